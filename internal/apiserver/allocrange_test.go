package apiserver

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/ptr"
)

func TestIPRange(t *testing.T) {
	cases := []struct {
		cidr        string
		size        uint64
		first, last string
		err         bool
	}{
		{cidr: "10.96.0.0/12", size: 1<<20 - 2, first: "10.96.0.1", last: "10.111.255.254"},
		{cidr: "10.0.7.0/29", size: 6, first: "10.0.7.1", last: "10.0.7.6"},
		{cidr: "10.0.0.0/30", size: 2, first: "10.0.0.1", last: "10.0.0.2"},
		{cidr: "10.0.0.0/31", err: true},
		{cidr: "fd00::/112", size: 1<<16 - 1, first: "fd00::1", last: "fd00::ffff"},
		{cidr: "fd00::/48", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.cidr, func(t *testing.T) {
			r, err := newIPRange(netip.MustParsePrefix(tc.cidr))
			if tc.err {
				if err == nil {
					t.Fatalf("no error for %s", tc.cidr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.size != tc.size || r.addr(0).String() != tc.first || r.addr(r.size-1).String() != tc.last {
				t.Fatalf("size %d first %s last %s", r.size, r.addr(0), r.addr(r.size-1))
			}
			for _, a := range []string{tc.first, tc.last} {
				off, ok := r.offset(netip.MustParseAddr(a))
				if !ok || r.addr(off).String() != a {
					t.Errorf("offset(%s) = %d, %v", a, off, ok)
				}
			}
			network := netip.MustParsePrefix(tc.cidr).Addr()
			if _, ok := r.offset(network); ok {
				t.Errorf("network address %s is assignable", network)
			}
			if _, ok := r.offset(netip.MustParseAddr("192.0.2.1")); ok {
				t.Error("an outside address is assignable")
			}
		})
	}
}

func TestStaticBand(t *testing.T) {
	cases := []struct{ size, floor, step, ceiling, want uint64 }{
		{size: 6, floor: 16, step: 16, ceiling: 256, want: 0},
		{size: 254, floor: 16, step: 16, ceiling: 256, want: 16},
		{size: 1<<20 - 2, floor: 16, step: 16, ceiling: 256, want: 256},
		{size: 2768, floor: 16, step: 32, ceiling: 128, want: 86},
	}
	for _, tc := range cases {
		if got := staticBand(tc.size, tc.floor, tc.step, tc.ceiling); got != tc.want {
			t.Errorf("staticBand(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	cases := []struct {
		in   string
		want PortRange
		err  bool
	}{
		{in: "30000-32767", want: PortRange{30000, 2768}},
		{in: " 31000 - 31004 ", want: PortRange{31000, 5}},
		{in: "8080", want: PortRange{8080, 1}},
		{in: "32767-30000", err: true},
		{in: "0-10", err: true},
		{in: "1-70000", err: true},
		{in: "a-b", err: true},
	}
	for _, tc := range cases {
		got, err := ParsePortRange(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParsePortRange(%q) = %v, %v", tc.in, got, err)
		}
	}
	if s := (PortRange{30000, 2768}).String(); s != "30000-32767" {
		t.Errorf("String() = %s", s)
	}
}

func TestPrepareServiceUpdate(t *testing.T) {
	nodePortSvc := func() *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.9", ClusterIPs: []string{"10.96.0.9"},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}, IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicySingleStack),
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			Ports:                 []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}, {Name: "https", Port: 443, NodePort: 30443}},
		}}
	}
	cases := []struct {
		name string
		edit func(*corev1.Service)
		want func(*corev1.Service)
	}{{
		name: "omitted allocations are carried over",
		edit: func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
			s.Spec.Ports[0].NodePort, s.Spec.Ports[1].NodePort = 0, 0
		},
		want: func(s *corev1.Service) {},
	}, {
		name: "node ports follow port names",
		edit: func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "https", Port: 8443}, {Name: "metrics", Port: 9090}}
		},
		want: func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "https", Port: 8443, NodePort: 30443}, {Name: "metrics", Port: 9090}}
		},
	}, {
		name: "to ClusterIP drops node ports and the traffic policy",
		edit: func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP },
		want: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.Ports[0].NodePort, s.Spec.Ports[1].NodePort = 0, 0
			s.Spec.ExternalTrafficPolicy = ""
		},
	}, {
		name: "to ExternalName drops the cluster IP fields",
		edit: func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
		},
		want: func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
			s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.IPFamilies, s.Spec.IPFamilyPolicy = "", nil, nil, nil
			s.Spec.Ports[0].NodePort, s.Spec.Ports[1].NodePort = 0, 0
			s.Spec.ExternalTrafficPolicy = ""
		},
	}, {
		name: "values the client changed are kept for validation to judge",
		edit: func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP; s.Spec.Ports[0].NodePort = 30999 },
		want: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.Ports[0].NodePort = 30999
			s.Spec.ExternalTrafficPolicy = ""
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, svc, want := nodePortSvc(), nodePortSvc(), nodePortSvc()
			tc.edit(svc)
			tc.want(want)
			prepareServiceUpdate(svc, old)
			if !equality.Semantic.DeepEqual(svc.Spec, want.Spec) {
				t.Errorf("spec\n%+v\nwant\n%+v", svc.Spec, want.Spec)
			}
		})
	}
}
