package announce

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ARP over Ethernet for IPv4 (RFC 826).
const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	arpRequest    = 1
	arpReply      = 2
	ethHeaderLen  = 14
	arpLen        = 28
	minFrameLen   = 60 // Ethernet's minimum without the FCS
)

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpPacket is an ARP message for IPv4 over Ethernet with the frame's
// destination.
type arpPacket struct {
	ethDst    net.HardwareAddr
	op        uint16
	senderMAC net.HardwareAddr
	senderIP  netip.Addr
	targetMAC net.HardwareAddr
	targetIP  netip.Addr
}

// parseARP reads an Ethernet frame carrying ARP for IPv4.
func parseARP(frame []byte) (arpPacket, bool) {
	if len(frame) < ethHeaderLen+arpLen || binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP {
		return arpPacket{}, false
	}
	a := frame[ethHeaderLen:]
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != etherTypeIPv4 || a[4] != 6 || a[5] != 4 {
		return arpPacket{}, false
	}
	return arpPacket{
		ethDst:    net.HardwareAddr(bytes.Clone(frame[0:6])),
		op:        binary.BigEndian.Uint16(a[6:8]),
		senderMAC: net.HardwareAddr(bytes.Clone(a[8:14])),
		senderIP:  netip.AddrFrom4([4]byte(a[14:18])),
		targetMAC: net.HardwareAddr(bytes.Clone(a[18:24])),
		targetIP:  netip.AddrFrom4([4]byte(a[24:28])),
	}, true
}

// frame is p as an Ethernet frame from src, padded to the minimum length.
func (p arpPacket) frame(src net.HardwareAddr) []byte {
	b := make([]byte, minFrameLen)
	copy(b[0:6], p.ethDst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	a := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(a[0:2], 1)
	binary.BigEndian.PutUint16(a[2:4], etherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], p.op)
	copy(a[8:14], p.senderMAC)
	ip := p.senderIP.As4()
	copy(a[14:18], ip[:])
	copy(a[18:24], p.targetMAC)
	ip = p.targetIP.As4()
	copy(a[24:28], ip[:])
	return b
}

// replyTo is the answer to request req saying that ip is at mac.
func replyTo(req arpPacket, ip netip.Addr, mac net.HardwareAddr) arpPacket {
	return arpPacket{ethDst: req.senderMAC, op: arpReply, senderMAC: mac, senderIP: ip, targetMAC: req.senderMAC, targetIP: req.senderIP}
}

// gratuitous are the unsolicited announcements that ip is at mac: a
// request and a reply, both broadcast, sender and target address ip (as
// MetalLB sends them, for hosts that heed either kind).
func gratuitous(ip netip.Addr, mac net.HardwareAddr) []arpPacket {
	var out []arpPacket
	for _, op := range []uint16{arpRequest, arpReply} {
		out = append(out, arpPacket{ethDst: broadcast, op: op, senderMAC: mac, senderIP: ip, targetMAC: broadcast, targetIP: ip})
	}
	return out
}

// arpConn is an AF_PACKET socket for ARP on one interface. Reads block in
// the runtime's poller, so close (or a deadline) ends them.
type arpConn struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int
	mac     net.HardwareAddr
	closed  atomic.Bool
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openARP opens the socket on the interface named ifname, in the calling
// thread's network namespace.
func openARP(ifname string) (*arpConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %s has no Ethernet address", ifname)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return nil, fmt.Errorf("arp socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("arp socket on %s: %w", ifname, err)
	}
	f := os.NewFile(uintptr(fd), "arp:"+ifname)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("arp socket on %s: %w", ifname, err)
	}
	return &arpConn{f: f, rc: rc, ifindex: ifi.Index, mac: ifi.HardwareAddr}, nil
}

// read reads one frame; outgoing says the node sent it itself.
func (c *arpConn) read(buf []byte) (n int, outgoing bool, err error) {
	var from unix.Sockaddr
	var rerr error
	err = c.rc.Read(func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err != nil {
		if c.closed.Load() {
			return 0, false, os.ErrClosed
		}
		return 0, false, err
	}
	if rerr != nil {
		return 0, false, rerr
	}
	if ll, ok := from.(*unix.SockaddrLinklayer); ok {
		outgoing = ll.Pkttype == unix.PACKET_OUTGOING
	}
	return n, outgoing, nil
}

func (c *arpConn) send(p arpPacket) error {
	frame := p.frame(c.mac)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: c.ifindex, Halen: 6}
	copy(to.Addr[:], p.ethDst)
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), frame, 0, to)
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err != nil {
		if c.closed.Load() {
			return os.ErrClosed
		}
		return err
	}
	return serr
}

func (c *arpConn) setReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

func (c *arpConn) close() error {
	c.closed.Store(true)
	return c.f.Close()
}
