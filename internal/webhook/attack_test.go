package webhook

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// The attacks below are made over real TCP connections to a real
// http.Server on loopback; the server's reads are counted on its listener,
// so "the body was not read" is a count of bytes, not a timing.

const (
	attackGitHubKey   = "0f3c9a1e7b2d4c6a8e0f1b3d5c7a9e2f"
	attackGitLabToken = "a-gitlab-token-of-some-length"
	// readBound is what the server may read of a refused request: its
	// headers and the first buffer of body behind them, far below MaxBody.
	readBound = 64 << 10
	// hangGuard only stops a test that would otherwise hang; nothing is
	// asserted about how long an answer takes.
	hangGuard = 10 * time.Second
)

// countingListener counts the bytes the server reads from its connections.
type countingListener struct {
	net.Listener
	read *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, read: l.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// serve runs r behind NewServer's limits on loopback and returns its
// address and the count of bytes it has read.
func serve(t *testing.T, r *Receiver) (string, *atomic.Int64) {
	t.Helper()
	read := new(atomic.Int64)
	s := httptest.NewUnstartedServer(r)
	s.Config = NewServer(r, ServerOptions{})
	s.Listener = countingListener{Listener: s.Listener, read: read}
	s.Start()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String(), read
}

// attackReceiver manages team-a (keys for both forges) and team-b (no
// Secret); the controller-wide keys are set. keyCalls counts Key's calls.
func attackReceiver(triggered *[]string, keyCalls *atomic.Int64) *Receiver {
	var mu sync.Mutex
	return &Receiver{
		Namespaces: []string{"team-a", "team-b"},
		Key: func(_ context.Context, forge, ns string) ([]byte, error) {
			keyCalls.Add(1)
			switch {
			case ns == "team-b":
				return nil, errors.New("secrets \"keyless-webhook\" not found")
			case forge == GitHub:
				return []byte(attackGitHubKey), nil
			}
			return []byte(attackGitLabToken), nil
		},
		Trigger: func(_ context.Context, ev PushEvent, ns string) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			*triggered = append(*triggered, ns+" "+ev.Ref)
			return 1, nil
		},
	}
}

// body says what a request offers after its headers.
type body struct {
	text string // sent whole, with its Content-Length
	// huge offers MaxBody bytes (Content-Length) and writes them as long as
	// the server takes them; endless sends one chunk and never the end.
	huge, endless bool
}

// answer is a response read off the wire.
type answer struct {
	status     int
	text       string
	retryAfter string
}

// offer opens a connection from the loopback address from (any when ""),
// sends a POST of path with headers and b, and reads the answer.
func offer(t *testing.T, addr, from, path string, headers map[string]string, b body) answer {
	t.Helper()
	d := net.Dialer{Timeout: hangGuard}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(hangGuard))
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: keyless\r\nContent-Type: application/json\r\n", path)
	for k, v := range headers {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	switch {
	case b.huge:
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", MaxBody)
	case b.endless:
		head.WriteString("Transfer-Encoding: chunked\r\n\r\n1000\r\n" + strings.Repeat("x", 0x1000) + "\r\n")
	default:
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n%s", len(b.text), b.text)
	}
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Fatal(err)
	}
	var writing sync.WaitGroup
	if b.huge {
		writing.Go(func() {
			chunk := make([]byte, 32<<10)
			for sent := 0; sent < MaxBody; sent += len(chunk) {
				if _, err := conn.Write(chunk); err != nil {
					return // the server closed: it wanted no more
				}
			}
		})
	}
	defer writing.Wait()
	defer func() { _ = conn.Close() }() // before Wait: ends a blocked Write
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("POST %s: no answer: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	text, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, strings.TrimSpace(string(text)), resp.Header.Get("Retry-After")}
}

func githubHeaders(sig, delivery string) map[string]string {
	h := map[string]string{"X-GitHub-Event": "push", GitHubSignatureHeader: sig}
	if delivery != "" {
		h["X-GitHub-Delivery"] = delivery
	}
	return h
}

func signGitHub(body string) string {
	mac := hmac.New(sha256.New, []byte(attackGitHubKey))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// wrongSignature is well-formed and wrong.
var wrongSignature = "sha256=" + strings.Repeat("ab", 32)

// TestUnauthenticatedBodyIsNotRead: requests that cannot be authenticated
// from their route and headers — no or a malformed signature, an unmanaged
// namespace, a namespace without a key, a wrong or oversized GitLab token —
// each offering a 1 MiB body, or a body that never ends, are answered 401
// with the server having read no more than their headers' worth; and no
// key is looked up for a malformed header or an unmanaged namespace.
func TestUnauthenticatedBodyIsNotRead(t *testing.T) {
	var triggered []string
	var keyCalls atomic.Int64
	addr, read := serve(t, attackReceiver(&triggered, &keyCalls))
	for _, tc := range []struct {
		name, path string
		headers    map[string]string
		b          body
		keyLookup  bool
	}{
		{"no signature", "/hooks/github", map[string]string{"X-GitHub-Event": "push"}, body{huge: true}, false},
		{"no signature, a body that never ends", "/hooks/github", nil, body{endless: true}, false},
		{"a signature that is not hex", "/hooks/github", githubHeaders("sha256="+strings.Repeat("zz", 32), ""), body{huge: true}, false},
		{"a short signature", "/hooks/github", githubHeaders("sha256=abcd", ""), body{huge: true}, false},
		{"a SHA-1 signature", "/hooks/github", githubHeaders("sha1="+strings.Repeat("ab", 20), ""), body{huge: true}, false},
		{"an unmanaged namespace", "/hooks/github/kube-system", githubHeaders(wrongSignature, ""), body{huge: true}, false},
		{"an unmanaged namespace, a body that never ends", "/hooks/gitlab/kube-system", map[string]string{GitLabTokenHeader: attackGitLabToken}, body{endless: true}, false},
		{"a managed namespace without a key", "/hooks/github/team-b", githubHeaders(wrongSignature, ""), body{huge: true}, true},
		{"no GitLab token", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook"}, body{huge: true}, false},
		{"an oversized GitLab token", "/hooks/gitlab", map[string]string{GitLabTokenHeader: strings.Repeat("t", MaxTokenLen+1)}, body{huge: true}, false},
		{"a wrong GitLab token", "/hooks/gitlab/team-a", map[string]string{GitLabTokenHeader: "wrong-token"}, body{huge: true}, true},
		{"a wrong GitLab token, a body that never ends", "/hooks/gitlab", map[string]string{GitLabTokenHeader: "wrong-token"}, body{endless: true}, true},
	} {
		before, keysBefore := read.Load(), keyCalls.Load()
		got := offer(t, addr, "", tc.path, tc.headers, tc.b)
		if got.status != http.StatusUnauthorized {
			t.Errorf("%s: %d %q, want 401", tc.name, got.status, got.text)
		}
		if n := read.Load() - before; n > readBound {
			t.Errorf("%s: the server read %d bytes of a request it refused, want at most %d", tc.name, n, readBound)
		}
		if looked := keyCalls.Load() > keysBefore; looked != tc.keyLookup {
			t.Errorf("%s: key looked up %v, want %v", tc.name, looked, tc.keyLookup)
		}
	}
	if len(triggered) != 0 {
		t.Errorf("refused requests triggered %v", triggered)
	}

	// The same server still reads, verifies and triggers a signed push.
	push := `{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/team-a/web.git"}}`
	if got := offer(t, addr, "", "/hooks/github/team-a", githubHeaders(signGitHub(push), "1"), body{text: push}); got.status != http.StatusOK || got.text != `{"triggered":1}` {
		t.Fatalf("a signed push: %d %q", got.status, got.text)
	}
	if len(triggered) != 1 || triggered[0] != "team-a refs/heads/main" {
		t.Errorf("triggered %v, want team-a's push", triggered)
	}
}

// TestUnmanagedNamespaceAnswersLikeKeylessOne: whether a namespace is not
// managed, managed without a keyless-webhook Secret, or managed with one
// the request does not match, the answer is the same status and text, with
// and without a well-formed header, for both forges: nobody can probe which
// namespaces keyless manages.
func TestUnmanagedNamespaceAnswersLikeKeylessOne(t *testing.T) {
	var triggered []string
	var keyCalls atomic.Int64
	addr, _ := serve(t, attackReceiver(&triggered, &keyCalls))
	push := `{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/team-a/web.git"}}`
	for forge, headers := range map[string][]map[string]string{
		GitHub: {nil, githubHeaders("sha256=00", ""), githubHeaders(wrongSignature, "")},
		GitLab: {nil, {GitLabTokenHeader: "wrong-token"}},
	} {
		for _, h := range headers {
			var first answer
			for i, ns := range []string{"kube-system", "team-b", "team-a"} {
				got := offer(t, addr, "", "/hooks/"+forge+"/"+ns, h, body{text: push})
				if i == 0 {
					first = got
					if got.status != http.StatusUnauthorized || got.text != MsgUnauthorized {
						t.Errorf("%s %v, unmanaged %s: %d %q, want 401 %q", forge, h, ns, got.status, got.text, MsgUnauthorized)
					}
					continue
				}
				if got != first {
					t.Errorf("%s %v: %s answers %+v, the unmanaged kube-system %+v", forge, h, ns, got, first)
				}
			}
		}
	}
}

// TestConcurrentRequestsBeyondTheCapAreRefusedUnread: with MaxConcurrent
// requests held (their key lookup blocked, as a slow body would hold
// them), twenty more, each offering 1 MiB, are answered 503 with
// Retry-After and none of their bodies is read; once the held ones finish,
// a request is served again.
func TestConcurrentRequestsBeyondTheCapAreRefusedUnread(t *testing.T) {
	const maxConcurrent, more = 4, 20
	entered, release := make(chan struct{}, maxConcurrent), make(chan struct{})
	r := &Receiver{
		MaxConcurrent: maxConcurrent,
		SourceBurst:   100,
		Key: func(ctx context.Context, _, _ string) ([]byte, error) {
			select {
			case entered <- struct{}{}:
			default: // released: the held ones are in
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return []byte(attackGitHubKey), nil
		},
		Trigger: func(context.Context, PushEvent, string) (int, error) { return 0, errors.New("no push is signed here") },
	}
	addr, read := serve(t, r)
	var held sync.WaitGroup
	heldAnswers := make(chan answer, maxConcurrent)
	for range maxConcurrent {
		held.Go(func() {
			heldAnswers <- offer(t, addr, "", "/hooks/github", githubHeaders(wrongSignature, ""), body{text: `{}`})
		})
	}
	for range maxConcurrent {
		<-entered
	}

	before := read.Load()
	var refused sync.WaitGroup
	answers := make(chan answer, more)
	for range more {
		refused.Go(func() {
			answers <- offer(t, addr, "", "/hooks/github", githubHeaders(wrongSignature, ""), body{huge: true})
		})
	}
	refused.Wait()
	close(answers)
	for got := range answers {
		if got.status != http.StatusServiceUnavailable || got.retryAfter == "" {
			t.Errorf("a request beyond the cap: %d %q (Retry-After %q), want 503 with Retry-After", got.status, got.text, got.retryAfter)
		}
	}
	if n := read.Load() - before; n > more*readBound {
		t.Errorf("the server read %d bytes of %d requests it refused (%d MiB offered), want at most %d", n, more, more, more*readBound)
	}

	close(release)
	held.Wait()
	close(heldAnswers)
	for got := range heldAnswers {
		if got.status != http.StatusUnauthorized {
			t.Errorf("a held request with a wrong signature: %d %q, want 401", got.status, got.text)
		}
	}
	if got := offer(t, addr, "", "/hooks/github", githubHeaders(wrongSignature, ""), body{text: `{}`}); got.status != http.StatusUnauthorized {
		t.Errorf("after the held requests finished: %d %q, want 401 (a slot free again)", got.status, got.text)
	}
}

// TestSourceOverItsRateIsRefusedUnread: a source that used up its bucket
// gets 429 with Retry-After, its 1 MiB body unread, on a managed namespace
// and an unmanaged one alike; another source is still served, and the
// controller-wide GitLab route (its token compared before anything is read)
// is not rate-limited.
func TestSourceOverItsRateIsRefusedUnread(t *testing.T) {
	var triggered []string
	var keyCalls atomic.Int64
	r := attackReceiver(&triggered, &keyCalls)
	r.SourceRate, r.SourceBurst = rate.Every(time.Hour), 3
	addr, read := serve(t, r)
	const attacker, other = "127.0.0.1", "127.0.0.2"
	for i := range 3 {
		if got := offer(t, addr, attacker, "/hooks/github", githubHeaders(wrongSignature, ""), body{text: `{}`}); got.status != http.StatusUnauthorized {
			t.Fatalf("request %d within the burst: %d %q, want 401", i, got.status, got.text)
		}
	}
	for _, path := range []string{"/hooks/github", "/hooks/github/team-a", "/hooks/github/kube-system", "/hooks/gitlab/team-a"} {
		h := githubHeaders(wrongSignature, "")
		if strings.HasPrefix(path, "/hooks/gitlab") {
			h = map[string]string{GitLabTokenHeader: attackGitLabToken}
		}
		before := read.Load()
		got := offer(t, addr, attacker, path, h, body{huge: true})
		if got.status != http.StatusTooManyRequests || got.retryAfter == "" {
			t.Errorf("%s past the burst: %d %q (Retry-After %q), want 429 with Retry-After", path, got.status, got.text, got.retryAfter)
		}
		if n := read.Load() - before; n > readBound {
			t.Errorf("%s past the burst: the server read %d bytes, want at most %d", path, n, readBound)
		}
	}
	if got := offer(t, addr, other, "/hooks/github", githubHeaders(wrongSignature, ""), body{text: `{}`}); got.status != http.StatusUnauthorized {
		t.Errorf("another source: %d %q, want 401 (its own bucket)", got.status, got.text)
	}
	gl := `{"object_kind":"push","ref":"refs/heads/main","project":{"git_http_url":"https://gitlab.com/team-a/web.git"}}`
	if got := offer(t, addr, attacker, "/hooks/gitlab", map[string]string{GitLabTokenHeader: attackGitLabToken, "X-Gitlab-Event": "Push Hook"}, body{text: gl}); got.status != http.StatusOK {
		t.Errorf("a GitLab push with the controller-wide token from the limited source: %d %q, want 200", got.status, got.text)
	}
}

// TestReplayedBodyWithNewDeliveryIDIsDropped: a signed push replayed with
// another delivery ID, or none, triggers nothing (answered as a duplicate);
// the next push (another body) triggers.
func TestReplayedBodyWithNewDeliveryIDIsDropped(t *testing.T) {
	var triggered []string
	var keyCalls atomic.Int64
	addr, _ := serve(t, attackReceiver(&triggered, &keyCalls))
	push := `{"ref":"refs/heads/main","after":"1111","repository":{"clone_url":"https://github.com/team-a/web.git"}}`
	if got := offer(t, addr, "", "/hooks/github/team-a", githubHeaders(signGitHub(push), "d-1"), body{text: push}); got.status != http.StatusOK || got.text != `{"triggered":1}` {
		t.Fatalf("the push: %d %q", got.status, got.text)
	}
	for _, delivery := range []string{"d-2", ""} {
		got := offer(t, addr, "", "/hooks/github/team-a", githubHeaders(signGitHub(push), delivery), body{text: push})
		if got.status != http.StatusOK || !strings.Contains(got.text, `"duplicate":true`) {
			t.Errorf("the push replayed with delivery ID %q: %d %q, want a duplicate", delivery, got.status, got.text)
		}
	}
	next := strings.Replace(push, "1111", "2222", 1)
	if got := offer(t, addr, "", "/hooks/github/team-a", githubHeaders(signGitHub(next), ""), body{text: next}); got.status != http.StatusOK || got.text != `{"triggered":1}` {
		t.Errorf("the next push: %d %q", got.status, got.text)
	}
	if len(triggered) != 2 {
		t.Errorf("triggered %d times (%v), want twice: the push and the next", len(triggered), triggered)
	}
}

// TestServerCutsOffSlowAndHugeHeaders: NewServer's listener closes a
// connection whose headers never end, and refuses headers over
// MaxHeaderBytes.
func TestServerCutsOffSlowAndHugeHeaders(t *testing.T) {
	s := httptest.NewUnstartedServer(http.NotFoundHandler())
	s.Config = NewServer(http.NotFoundHandler(), ServerOptions{ReadHeaderTimeout: 100 * time.Millisecond})
	s.Start()
	defer s.Close()
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(conn, "POST /hooks/github HTTP/1.1\r\nHost: keyless\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("a connection whose headers never end was not closed: %v", err)
	}

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/hooks/github", nil)
	req.Header.Set("X-Padding", strings.Repeat("p", 32<<10))
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("32 KiB of headers: %d, want 431", resp.StatusCode)
	}
}

// TestSourcesAreBounded: IPv6 addresses of one /64 are one source; past
// MaxSources, new sources share one bucket until remembered ones refill.
func TestSourcesAreBounded(t *testing.T) {
	if a, b := sourceOf("[2001:db8::1]:1"), sourceOf("[2001:db8::ffff:2]:2"); a != b {
		t.Errorf("one /64: sources %v and %v", a, b)
	}
	if a := sourceOf("[::ffff:192.0.2.1]:1"); a != netip.MustParsePrefix("192.0.2.1/32") {
		t.Errorf("an IPv4-mapped address: source %v", a)
	}
	now := time.Now()
	s := &sources{rate: 1, burst: 1, max: 2, buckets: map[netip.Prefix]*rate.Limiter{}, overflow: rate.NewLimiter(1, 1)}
	for _, ip := range []string{"192.0.2.1", "192.0.2.2"} {
		if !s.allow(netip.MustParsePrefix(ip+"/32"), now) {
			t.Fatalf("%s's first request refused", ip)
		}
	}
	third, fourth := netip.MustParsePrefix("192.0.2.3/32"), netip.MustParsePrefix("192.0.2.4/32")
	if !s.allow(third, now) || s.allow(fourth, now) || len(s.buckets) != 2 {
		t.Errorf("past MaxSources: want new sources sharing one bucket and 2 remembered, have %d", len(s.buckets))
	}
	later := now.Add(time.Minute)
	if _, remembered := s.buckets[fourth]; !s.allow(fourth, later) || remembered {
		t.Errorf("after the remembered buckets refilled: a new source refused or already remembered")
	}
	if _, remembered := s.buckets[fourth]; !remembered || len(s.buckets) > 2 {
		t.Errorf("after the remembered buckets refilled: want the full ones forgotten and the new source remembered, have %v", s.buckets)
	}
}

// TestDeliveriesAreBounded: the replay memory holds at most MaxRemembered
// entries, and forgets past ReplayWindow.
func TestDeliveriesAreBounded(t *testing.T) {
	var d deliveries
	now := time.Now()
	for i := range MaxRemembered + 100 {
		d.repeated(now, "github//", fmt.Sprint("delivery:", i))
	}
	if len(d.ids) > MaxRemembered {
		t.Errorf("%d remembered, want at most %d", len(d.ids), MaxRemembered)
	}
	if !d.repeated(now, "github//", fmt.Sprint("delivery:", MaxRemembered+99)) {
		t.Error("the newest delivery was forgotten")
	}
	if d.repeated(now.Add(ReplayWindow), "github//", fmt.Sprint("delivery:", MaxRemembered+99)) {
		t.Error("a delivery past ReplayWindow is still a duplicate")
	}
}
