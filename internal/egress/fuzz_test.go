package egress

import (
	"net/netip"
	"testing"
)

// The oracle below is written apart from the product's rules on purpose:
// literal ranges and byte offsets, so a mistake in one is not repeated in
// the other.

// alwaysRefused may never be dialled, whatever AllowCIDRs holds (loopback
// included: the fuzz policies do not set AllowLoopback).
var alwaysRefused = []string{
	"127.0.0.0/8", "::1/128", // loopback
	"0.0.0.0/8", "::/128", // unspecified, this network
	"169.254.0.0/16", "fe80::/10", // link-local: the metadata endpoint
	"224.0.0.0/4", "ff00::/8", // multicast
	"100.100.100.200/32", "168.63.129.16/32", "192.0.0.192/32", // metadata outside link-local
	"fd00:ec2::254/128", "fd00:ec2::23/128", "fd20:ce::254/128",
}

// refusedByDefault may be dialled only when AllowCIDRs holds them.
var refusedByDefault = []string{"100.64.0.0/10", "fc00::/7", "64:ff9b:1::/48"}

// fuzzDeny is the deny list of the fuzz policies: a cluster's ranges.
var fuzzDeny = []string{"10.244.0.0/16", "10.96.0.0/12", "fd00:10:96::/108"}

// fuzzAllow opens every range an allow-list may open, and some it may not.
var fuzzAllow = []string{"10.96.0.0/16", "100.64.0.0/10", "fc00::/7", "64:ff9b:1::/48", "169.254.0.0/16", "127.0.0.0/8", "fd00:ec2::/32"}

// destinations returns what dialling ip may reach: ip unmapped, and the IPv4
// address an IPv4-compatible, IPv4-translated, NAT64 or 6to4 address
// carries.
func destinations(ip netip.Addr) []netip.Addr {
	b := ip.As16()
	zero := func(bs ...byte) bool {
		for _, x := range bs {
			if x != 0 {
				return false
			}
		}
		return true
	}
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	if ip.Is4() {
		return []netip.Addr{ip}
	}
	switch {
	case zero(b[:10]...) && b[10] == 0xff && b[11] == 0xff: // ::ffff:a.b.c.d
		return []netip.Addr{v4(12)}
	case zero(b[:12]...), // ::a.b.c.d
		zero(b[:8]...) && b[8] == 0xff && b[9] == 0xff && zero(b[10:12]...),           // ::ffff:0:a.b.c.d
		b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(b[4:12]...): // 64:ff9b::a.b.c.d
		return []netip.Addr{ip, v4(12)}
	case b[0] == 0x20 && b[1] == 0x02: // 2002:aabb:ccdd::
		return []netip.Addr{ip, v4(2)}
	}
	return []netip.Addr{ip}
}

func inAny(cidrs []string, ip netip.Addr) string {
	for _, c := range cidrs {
		if netip.MustParsePrefix(c).Contains(ip) {
			return c
		}
	}
	return ""
}

// FuzzCheckAddress: the check never panics, and whatever it lets the dialer
// reach (also through an embedded IPv4) is outside every refused range, for
// the default policy, a cluster's deny list, and an allow-list that tries to
// open what must stay closed. An input of 16 bytes or more that is not an
// address is also read as the 16 bytes of an IPv6 address, so the fuzzer
// reaches every address quickly.
func FuzzCheckAddress(f *testing.F) {
	for _, s := range []string{"203.0.113.9:443", "[::ffff:169.254.169.254]:80", "[64:ff9b::a9fe:a9fe]:443", "[2002:a9fe:a9fe::1]:443"} {
		f.Add(s)
	}
	mustPrefixes := func(cidrs []string) []netip.Prefix {
		var out []netip.Prefix
		for _, c := range cidrs {
			out = append(out, netip.MustParsePrefix(c))
		}
		return out
	}
	policies := []struct {
		name    string
		p       *policy
		refused []string // besides alwaysRefused
	}{
		{"default", newPolicy(Options{}), refusedByDefault},
		{"deny", newPolicy(Options{DenyCIDRs: mustPrefixes(fuzzDeny)}), append(append([]string{}, refusedByDefault...), fuzzDeny...)},
		{"allow", newPolicy(Options{DenyCIDRs: mustPrefixes(fuzzDeny), AllowCIDRs: mustPrefixes(fuzzAllow)}), []string{"10.244.0.0/16", "10.97.0.0/16"}},
	}
	f.Fuzz(func(t *testing.T, address string) {
		addresses := []string{address}
		if _, err := netip.ParseAddrPort(address); err != nil && len(address) >= 16 {
			addresses = append(addresses, netip.AddrPortFrom(netip.AddrFrom16([16]byte([]byte(address[:16]))), 443).String())
		}
		for _, a := range addresses {
			for _, pol := range policies {
				if pol.p.checkAddress(a) != nil {
					continue
				}
				ap, err := netip.ParseAddrPort(a)
				if err != nil {
					t.Fatalf("%s: %q is not an address but was accepted", pol.name, a)
				}
				if ap.Addr().Zone() != "" {
					t.Fatalf("%s: %q has a zone but was accepted", pol.name, a)
				}
				for _, d := range destinations(ap.Addr()) {
					if c := inAny(alwaysRefused, d); c != "" {
						t.Fatalf("%s: %q accepted, but it reaches %s in %s", pol.name, a, d, c)
					}
					if c := inAny(pol.refused, d); c != "" {
						t.Fatalf("%s: %q accepted, but it reaches %s in %s", pol.name, a, d, c)
					}
				}
			}
		}
	})
}
