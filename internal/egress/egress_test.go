package egress

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

func TestClientRefusesLoopbackAndLinkLocal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if _, err := Do(t.Context(), NewClient(Options{}), req); !errors.Is(err, ErrRefusedAddress) {
		t.Fatalf("loopback without AllowLoopback: err = %v, want ErrRefusedAddress", err)
	}
	if _, err := Do(t.Context(), NewClient(Options{AllowLoopback: true}), req); err != nil {
		t.Fatalf("loopback allowed: %v", err)
	}
}

func TestClientNeverFollowsRedirects(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("the redirect was followed") }))
	defer target.Close()
	srv := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, nil)
	_, err := Do(t.Context(), NewClient(Options{AllowLoopback: true}), req)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Fatalf("err = %v, want HTTP 302 reported", err)
	}
}

func TestCheckURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://hooks.slack.com/services/x": true, "http://h/x": false, "https://u:p@h/x": false, "ftp://h": false, "https:///x": false,
	} {
		if _, err := CheckURL("address", raw, false); (err == nil) != ok {
			t.Errorf("%s: err = %v, want ok=%v", raw, err, ok)
		}
	}
}

func prefixes(t *testing.T, cidrs ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		out = append(out, netip.MustParsePrefix(c))
	}
	return out
}

// TestCheckAddressRules is one row per rule: the address, the options, and
// the rule expected to refuse it ("" when it must pass).
func TestCheckAddressRules(t *testing.T) {
	cluster := Options{DenyCIDRs: prefixes(t, "10.244.0.0/16", "10.96.0.0/12", "fd00:10:96::/108")}
	forgeInside := Options{
		DenyCIDRs:  cluster.DenyCIDRs,
		AllowCIDRs: prefixes(t, "10.96.5.7/32", "100.64.0.0/10", "fc00::/7", "64:ff9b:1::/48", "::ffff:10.244.3.0/120"),
	}
	everything := Options{AllowCIDRs: prefixes(t, "0.0.0.0/0", "::/0")}
	for _, tc := range []struct {
		name, addr string
		opts       Options
		rule       string
		via        string // the embedded IPv4 refused, if any
	}{
		{name: "public IPv4", addr: "203.0.113.9:443"},
		{name: "public IPv6", addr: "[2001:db8::1]:443"},
		{name: "private-use IPv4 is a company forge", addr: "10.0.0.8:443"},
		{name: "192.168/16 too", addr: "192.168.1.2:443"},
		{name: "not an IP", addr: "example.com:443", rule: ruleNotIP},
		{name: "zone", addr: "[2001:db8::1%eth0]:443", rule: ruleZone},
		{name: "zone on metadata", addr: "[fd00:ec2::254%eth0]:80", rule: ruleZone},
		{name: "loopback", addr: "127.0.0.1:80", rule: ruleLoopback},
		{name: "loopback 127/8", addr: "127.1.2.3:80", rule: ruleLoopback},
		{name: "IPv6 loopback", addr: "[::1]:80", rule: ruleLoopback},
		{name: "mapped loopback", addr: "[::ffff:127.0.0.1]:80", rule: ruleLoopback},
		{name: "loopback allowed", addr: "127.0.0.1:80", opts: Options{AllowLoopback: true}},
		{name: "unspecified", addr: "0.0.0.0:80", rule: ruleUnspecified},
		{name: "this network", addr: "0.1.2.3:80", rule: ruleUnspecified},
		{name: "IPv6 unspecified", addr: "[::]:80", rule: ruleUnspecified},
		{name: "metadata 169.254.169.254", addr: "169.254.169.254:80", rule: ruleLinkLocal},
		{name: "ECS task metadata", addr: "169.254.170.2:80", rule: ruleLinkLocal},
		{name: "IPv6 link-local", addr: "[fe80::1]:443", rule: ruleLinkLocal},
		{name: "mapped metadata", addr: "[::ffff:169.254.169.254]:80", rule: ruleLinkLocal},
		{name: "multicast", addr: "224.0.0.1:80", rule: ruleMulticast},
		{name: "IPv6 multicast", addr: "[ff02::1]:80", rule: ruleMulticast},
		{name: "Alibaba metadata", addr: "100.100.100.200:80", rule: ruleMetadata},
		{name: "Azure WireServer", addr: "168.63.129.16:80", rule: ruleMetadata},
		{name: "Oracle Classic metadata", addr: "192.0.0.192:80", rule: ruleMetadata},
		{name: "AWS IPv6 metadata", addr: "[fd00:ec2::254]:80", rule: ruleMetadata},
		{name: "EKS Pod Identity IPv6", addr: "[fd00:ec2::23]:80", rule: ruleMetadata},
		{name: "GCP IPv6 metadata", addr: "[fd20:ce::254]:80", rule: ruleMetadata},
		{name: "shared address space", addr: "100.64.0.1:443", rule: ruleShared},
		{name: "unique-local", addr: "[fd12:3456::1]:443", rule: ruleUniqueLocal},
		{name: "unique-local fc00::/8", addr: "[fc00::1]:443", rule: ruleUniqueLocal},
		{name: "local-use NAT64", addr: "[64:ff9b:1::a9fe:a9fe]:443", rule: ruleLocalNAT64},
		{name: "NAT64 of a public address", addr: "[64:ff9b::cb00:7109]:443"},
		{name: "NAT64 of metadata", addr: "[64:ff9b::a9fe:a9fe]:443", rule: ruleLinkLocal, via: "169.254.169.254"},
		{name: "NAT64 of Alibaba", addr: "[64:ff9b::100.100.100.200]:443", rule: ruleMetadata, via: "100.100.100.200"},
		{name: "NAT64 of loopback", addr: "[64:ff9b::7f00:1]:443", rule: ruleLoopback, via: "127.0.0.1"},
		{name: "IPv4-compatible metadata", addr: "[::169.254.169.254]:80", rule: ruleLinkLocal, via: "169.254.169.254"},
		{name: "IPv4-compatible public", addr: "[::203.0.113.9]:80"},
		{name: "IPv4-translated metadata", addr: "[::ffff:0:169.254.169.254]:80", rule: ruleLinkLocal, via: "169.254.169.254"},
		{name: "6to4 of metadata", addr: "[2002:a9fe:a9fe::1]:443", rule: ruleLinkLocal, via: "169.254.169.254"},
		{name: "6to4 of Alibaba metadata", addr: "[2002:6464:64c8::1]:443", rule: ruleMetadata, via: "100.100.100.200"},
		{name: "6to4 of shared space", addr: "[2002:6440:1::1]:443", rule: ruleShared, via: "100.64.0.1"},
		{name: "6to4 of a public address", addr: "[2002:cb00:7109::1]:443"},
		{name: "pod range denied", addr: "10.244.1.5:80", opts: cluster, rule: ruleDenied},
		{name: "service range denied", addr: "10.96.0.1:443", opts: cluster, rule: ruleDenied},
		{name: "mapped service address denied", addr: "[::ffff:10.96.0.1]:443", opts: cluster, rule: ruleDenied},
		{name: "NAT64 of a service address denied", addr: "[64:ff9b::a60:1]:443", opts: cluster, rule: ruleDenied, via: "10.96.0.1"},
		{name: "IPv6 service range denied", addr: "[fd00:10:96::1]:443", opts: cluster, rule: ruleDenied},
		{name: "outside the deny list", addr: "10.0.0.8:443", opts: cluster},
		{name: "allow wins over deny", addr: "10.96.5.7:443", opts: forgeInside},
		{name: "allow is exact", addr: "10.96.5.8:443", opts: forgeInside, rule: ruleDenied},
		{name: "mapped allow prefix", addr: "10.244.3.4:443", opts: forgeInside},
		{name: "NAT64 of an allowed address", addr: "[64:ff9b::a60:507]:443", opts: forgeInside},
		{name: "allow wins over shared space", addr: "100.64.0.1:443", opts: forgeInside},
		{name: "allow wins over unique-local", addr: "[fd12:3456::1]:443", opts: forgeInside},
		{name: "allow wins over local-use NAT64", addr: "[64:ff9b:1::1]:443", opts: forgeInside},
		{name: "allow never opens Alibaba metadata", addr: "100.100.100.200:80", opts: forgeInside, rule: ruleMetadata},
		{name: "allow never opens AWS IPv6 metadata", addr: "[fd00:ec2::254]:80", opts: forgeInside, rule: ruleMetadata},
		{name: "allow everything: not loopback", addr: "127.0.0.1:80", opts: everything, rule: ruleLoopback},
		{name: "allow everything: not link-local", addr: "169.254.169.254:80", opts: everything, rule: ruleLinkLocal},
		{name: "allow everything: not NAT64 of metadata", addr: "[64:ff9b::a9fe:a9fe]:80", opts: everything, rule: ruleLinkLocal, via: "169.254.169.254"},
		{name: "allow everything: not multicast", addr: "[ff02::1]:80", opts: everything, rule: ruleMulticast},
		{name: "deny wins over AllowLoopback", addr: "127.0.0.1:80", opts: Options{AllowLoopback: true, DenyCIDRs: prefixes(t, "127.0.0.0/8")}, rule: ruleDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := newPolicy(tc.opts).checkAddress(tc.addr)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("%s: %v, want it allowed", tc.addr, err)
				}
				return
			}
			var re *RefusedError
			if !errors.Is(err, ErrRefusedAddress) || !errors.As(err, &re) {
				t.Fatalf("%s: err = %v, want a *RefusedError", tc.addr, err)
			}
			if re.Rule != tc.rule {
				t.Errorf("%s: refused by %q, want %q", tc.addr, re.Rule, tc.rule)
			}
			if got := re.Via.String(); tc.via != "" && got != tc.via || tc.via == "" && re.Via.IsValid() {
				t.Errorf("%s: via %s, want %q", tc.addr, got, tc.via)
			}
			if tc.via != "" && !strings.Contains(err.Error(), tc.via) {
				t.Errorf("%s: the error does not name the embedded address: %v", tc.addr, err)
			}
		})
	}
}

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs("--egress-deny-cidrs", []string{"10.244.0.0/16,10.96.0.0/12", " fd00:10:96::/108 ", "", "::ffff:10.0.0.0/104"})
	if err != nil {
		t.Fatal(err)
	}
	want := prefixes(t, "10.244.0.0/16", "10.96.0.0/12", "fd00:10:96::/108", "10.0.0.0/8")
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.96.0.0", "10.96.0.1/12", "10.96.0.0/33", "fd00::/8%eth0", "cluster"} {
		_, err := ParseCIDRs("--egress-allow-cidrs", []string{"10.0.0.0/8", bad})
		if !errors.Is(err, ErrBadCIDR) {
			t.Errorf("%q: err = %v, want ErrBadCIDR", bad, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "--egress-allow-cidrs") || !strings.Contains(msg, bad) {
			t.Errorf("%q: the error does not name the flag and the value: %v", bad, err)
		}
	}
}

// TestClientDenyAndAllowCIDRs dials a real listener on 127.0.0.1: the deny
// list wins over AllowLoopback, the allow list wins over the deny list, and
// the allow list alone never opens loopback.
func TestClientDenyAndAllowCIDRs(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	deny := prefixes(t, "127.0.0.0/8")
	allow := prefixes(t, "127.0.0.1/32")
	for _, tc := range []struct {
		name string
		opts Options
		rule string
	}{
		{"deny list wins over AllowLoopback", Options{AllowLoopback: true, DenyCIDRs: deny}, ruleDenied},
		{"allow list wins over the deny list", Options{AllowLoopback: true, DenyCIDRs: deny, AllowCIDRs: allow}, ""},
		{"allow list never opens loopback", Options{DenyCIDRs: deny, AllowCIDRs: allow}, ruleLoopback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			_, err := Do(t.Context(), NewClient(tc.opts), req)
			if tc.rule == "" {
				if err != nil || hits.Load() != before+1 {
					t.Fatalf("err = %v, hits %d → %d: want one delivered request", err, before, hits.Load())
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Rule != tc.rule {
				t.Fatalf("err = %v, want refused by %q", err, tc.rule)
			}
			if hits.Load() != before {
				t.Fatal("the refused request reached the server")
			}
		})
	}
}
