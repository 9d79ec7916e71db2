package announce

import (
	"net"
	"net/netip"
	"time"
)

// Test-only access for the external tests (package announce_test). They
// use testenv, which imports daemon, which imports this package, so they
// cannot be in-package tests.

// ARP operations and the Ethernet broadcast address.
const (
	ARPRequest = arpRequest
	ARPReply   = arpReply
)

var Broadcast = broadcast

// ARPPacket is arpPacket with exported fields.
type ARPPacket struct {
	EthDst    net.HardwareAddr
	Op        uint16
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

func exportPacket(p arpPacket) ARPPacket {
	return ARPPacket{EthDst: p.ethDst, Op: p.op, SenderMAC: p.senderMAC, SenderIP: p.senderIP, TargetMAC: p.targetMAC, TargetIP: p.targetIP}
}

func (p ARPPacket) internal() arpPacket {
	return arpPacket{ethDst: p.EthDst, op: p.Op, senderMAC: p.SenderMAC, senderIP: p.SenderIP, targetMAC: p.TargetMAC, targetIP: p.TargetIP}
}

// ParseARP is parseARP.
func ParseARP(frame []byte) (ARPPacket, bool) {
	p, ok := parseARP(frame)
	return exportPacket(p), ok
}

// ARPCapture is an arpConn: an AF_PACKET socket for ARP on one interface.
type ARPCapture struct{ c *arpConn }

// OpenARPCapture is openARP, in the calling thread's network namespace.
func OpenARPCapture(ifname string) (*ARPCapture, error) {
	c, err := openARP(ifname)
	if err != nil {
		return nil, err
	}
	return &ARPCapture{c: c}, nil
}

func (c *ARPCapture) Read(buf []byte) (n int, outgoing bool, err error) { return c.c.read(buf) }
func (c *ARPCapture) Send(p ARPPacket) error                            { return c.c.send(p.internal()) }
func (c *ARPCapture) SetReadDeadline(t time.Time) error                 { return c.c.setReadDeadline(t) }
func (c *ARPCapture) Close() error                                      { return c.c.close() }
