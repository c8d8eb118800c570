package controller

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func req(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

// testQueue is a fair queue without metrics or backoff delays worth waiting for.
func testQueue(t *testing.T, perNamespace int) *fairQueue {
	t.Helper()
	q := newFairQueue("", perNamespace, workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Millisecond, 10*time.Millisecond))
	t.Cleanup(q.ShutDown)
	return q
}

// get takes the next item, failing the test when none comes within a second.
func get(t *testing.T, q *fairQueue) reconcile.Request {
	t.Helper()
	got := make(chan reconcile.Request, 1)
	go func() {
		item, shutdown := q.Get()
		if !shutdown {
			got <- item
		}
	}()
	select {
	case item := <-got:
		return item
	case <-time.After(time.Second):
		t.Fatal("Get handed out nothing")
		return reconcile.Request{}
	}
}

func TestFairQueueOrder(t *testing.T) {
	for _, tc := range []struct {
		name         string
		perNamespace int
		// script is run in order: "add ns/name", "get ns/name" (the item
		// Get must hand out next) and "done ns/name".
		script []string
	}{
		{"one namespace is FIFO", 2, []string{"add a/1", "add a/2", "add a/3", "get a/1", "get a/2", "get a/3"}},
		{"namespaces take turns", 8, []string{"add a/1", "add a/2", "add a/3", "add b/1", "add c/1", "add b/2",
			"get a/1", "get b/1", "get c/1", "get a/2", "get b/2", "get a/3"}},
		{"a namespace at its share is passed over while another waits", 1, []string{"add a/1", "add a/2", "add b/1", "add b/2",
			"get a/1", "get b/1", "done b/1",
			// a was served longer ago, but holds its share; b does not.
			"get b/2", "done a/1", "get a/2"}},
		{"below the share, the namespace served longest ago goes first", 2, []string{"add a/1", "add a/2", "add b/1", "add b/2",
			"get a/1", "get b/1", "done b/1", "get a/2", "get b/2"}},
		{"when every waiting namespace holds its share, the one holding fewest goes first", 1, []string{
			"add a/1", "add a/2", "add a/3", "get a/1", "get a/2", "add b/1", "add b/2", "get b/1",
			// a (served longer ago) holds 2, b holds 1.
			"get b/2", "done a/1", "done b/1",
			// Both hold 1: turns again.
			"get a/3"}},
		{"a single busy namespace uses every worker", 1, []string{"add a/1", "add a/2", "add a/3", "get a/1", "get a/2", "get a/3"}},
		{"an item added twice is queued once", 2, []string{"add a/1", "add a/2", "add a/1", "add a/2", "add a/1", "get a/1", "get a/2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := testQueue(t, tc.perNamespace)
			for i, step := range tc.script {
				op, arg, _ := strings.Cut(step, " ")
				ns, name, _ := strings.Cut(arg, "/")
				switch op {
				case "add":
					q.Add(req(ns, name))
				case "done":
					q.Done(req(ns, name))
				case "get":
					if got := get(t, q); got != req(ns, name) {
						t.Fatalf("step %d (%s): Get handed out %s/%s", i, step, got.Namespace, got.Name)
					}
				}
			}
			if q.Len() != 0 {
				t.Errorf("Len = %d after the script, want 0", q.Len())
			}
		})
	}
}

// The case: one namespace's long syncs hold every worker; another
// namespace's Application is next as soon as a worker is free, ahead of
// the busy namespace's older items.
func TestFairQueueShareAfterABusyNamespace(t *testing.T) {
	q := testQueue(t, 2)
	for i := range 8 {
		q.Add(req("busy", fmt.Sprint(i)))
	}
	var held []reconcile.Request
	for range 4 { // four workers, nobody else waits: all four go to busy
		held = append(held, get(t, q))
	}
	q.Add(req("small", "configmap"))
	q.Done(held[0])
	if got := get(t, q); got != req("small", "configmap") {
		t.Fatalf("the first free worker took %v, want small/configmap", got)
	}
	// busy is still above its share (3 in flight, share 2) but nobody else
	// waits: the next free worker goes on with busy's items.
	q.Done(held[1])
	if got := get(t, q); got.Namespace != "busy" {
		t.Fatalf("got %v, want an item of busy", got)
	}
}

func TestFairQueueProcessingItemIsNotHandedOutAgain(t *testing.T) {
	q := testQueue(t, 4)
	a := req("a", "app")
	q.Add(a)
	if got := get(t, q); got != a {
		t.Fatalf("got %v", got)
	}
	q.Add(a) // while a worker holds it
	q.Add(a)
	if q.Len() != 0 {
		t.Fatalf("Len = %d while the only item is being processed", q.Len())
	}
	q.Add(req("a", "other"))
	if got := get(t, q); got != req("a", "other") {
		t.Fatalf("got %v, want a/other (a/app is being processed)", got)
	}
	q.Done(a)
	if q.Len() != 1 {
		t.Fatalf("Len = %d after Done, want a/app queued again once", q.Len())
	}
	if got := get(t, q); got != a {
		t.Fatalf("got %v after Done, want a/app", got)
	}
}

func TestFairQueuePriorities(t *testing.T) {
	low := handler.LowPriority
	q := testQueue(t, 4)
	// A restart's initial list is queued at low priority...
	for _, it := range []reconcile.Request{req("a", "1"), req("a", "2"), req("b", "1")} {
		q.AddWithOpts(priorityqueue.AddOpts{Priority: &low}, it)
	}
	// ...a push goes before it, in any namespace.
	q.Add(req("b", "push"))
	// An item queued at low priority and added again at the default moves up.
	q.Add(req("a", "2"))
	want := []struct {
		item     reconcile.Request
		priority int
	}{{req("a", "2"), 0}, {req("b", "push"), 0}, {req("a", "1"), low}, {req("b", "1"), low}}
	for _, w := range want {
		item, priority, _ := q.GetWithPriority()
		if item != w.item || priority != w.priority {
			t.Fatalf("got %v at %d, want %v at %d", item, priority, w.item, w.priority)
		}
		q.Done(item)
	}
}

func TestFairQueueDelaysAndBackoff(t *testing.T) {
	q := testQueue(t, 4)
	a := req("a", "app")
	q.AddAfter(a, 50*time.Millisecond)
	if q.Len() != 0 {
		t.Fatalf("Len = %d before the delay passed", q.Len())
	}
	start := time.Now()
	if got := get(t, q); got != a || time.Since(start) < 40*time.Millisecond {
		t.Fatalf("got %v after %s, want a/app after the delay", got, time.Since(start))
	}
	q.AddRateLimited(a)
	q.AddRateLimited(a)
	if n := q.NumRequeues(a); n != 2 {
		t.Fatalf("NumRequeues = %d, want 2", n)
	}
	q.Forget(a)
	if n := q.NumRequeues(a); n != 0 {
		t.Fatalf("NumRequeues = %d after Forget", n)
	}
	q.Done(a)
	if got := get(t, q); got != a {
		t.Fatalf("got %v, want the rate-limited a/app", got)
	}
	q.Done(a)
}

func TestFairQueueShutDown(t *testing.T) {
	t.Run("a waiting Get returns", func(t *testing.T) {
		q := testQueue(t, 1)
		ended := make(chan bool)
		go func() {
			_, shutdown := q.Get()
			ended <- shutdown
		}()
		time.Sleep(10 * time.Millisecond)
		q.ShutDown()
		select {
		case shutdown := <-ended:
			if !shutdown {
				t.Fatal("Get after ShutDown did not say shutdown")
			}
		case <-time.After(time.Second):
			t.Fatal("Get still waits after ShutDown")
		}
		if !q.ShuttingDown() {
			t.Fatal("ShuttingDown = false")
		}
		q.Add(req("a", "late"))
		if q.Len() != 0 {
			t.Fatal("an item was queued after ShutDown")
		}
	})
	t.Run("drain waits for items in flight", func(t *testing.T) {
		q := testQueue(t, 1)
		a := req("a", "app")
		q.Add(a)
		get(t, q)
		drained := make(chan struct{})
		go func() {
			q.ShutDownWithDrain()
			close(drained)
		}()
		select {
		case <-drained:
			t.Fatal("ShutDownWithDrain returned with an item in flight")
		case <-time.After(50 * time.Millisecond):
		}
		q.Done(a)
		select {
		case <-drained:
		case <-time.After(time.Second):
			t.Fatal("ShutDownWithDrain did not return after Done")
		}
	})
}

// runWorkers starts n workers that Get, process and Done until shutdown.
func runWorkers(q *fairQueue, n int, process func(reconcile.Request)) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				item, shutdown := q.Get()
				if shutdown {
					return
				}
				process(item)
				q.Done(item)
			}
		})
	}
	return &wg
}

// Many adders and workers at once (run with -race): every item added is
// processed after its last add, no item is held by two workers at once,
// and a namespace's share is kept whenever another namespace waits.
func TestFairQueueConcurrent(t *testing.T) {
	const (
		namespaces, names, workers, adders, adds = 5, 8, 6, 4, 400
		perNamespace                             = 2
	)
	q := testQueue(t, perNamespace)
	var (
		mu       sync.Mutex
		holding  = map[reconcile.Request]bool{}
		lastAdd  = map[reconcile.Request]int{}
		lastSeen = map[reconcile.Request]int{}
		clock    int
		failures []string
	)
	fail := func(format string, args ...any) {
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	work := runWorkers(q, workers, func(item reconcile.Request) {
		mu.Lock()
		if holding[item] {
			fail("%v handed to two workers", item)
		}
		holding[item] = true
		clock++
		lastSeen[item] = clock
		mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		mu.Lock()
		delete(holding, item)
		mu.Unlock()
	})
	var add sync.WaitGroup
	for range adders {
		add.Go(func() {
			for range adds {
				item := req(fmt.Sprint("ns", rand.IntN(namespaces)), fmt.Sprint("app", rand.IntN(names)))
				mu.Lock()
				clock++
				lastAdd[item] = clock
				mu.Unlock()
				switch rand.IntN(4) {
				case 0:
					q.AddAfter(item, time.Duration(rand.IntN(3))*time.Millisecond)
				case 1:
					q.AddRateLimited(item)
					q.Forget(item)
				default:
					q.Add(item)
				}
			}
		})
	}
	add.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		pending := 0
		for item, added := range lastAdd {
			if lastSeen[item] < added {
				pending++
			}
		}
		mu.Unlock()
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d items added were never processed afterwards", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	q.ShutDownWithDrain()
	work.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if q.order.Len() != 0 || len(q.order.handed) != 0 || len(q.order.inFlight) != 0 {
		t.Errorf("after the drain: %d queued, %d handed out, in flight %v", q.order.Len(), len(q.order.handed), q.order.inFlight)
	}
}

// The share holds under concurrency: checked inside Pop, where the queue
// decides, with workers and adders racing.
func TestFairQueueShareUnderConcurrency(t *testing.T) {
	const perNamespace, workers = 2, 6
	q := testQueue(t, perNamespace)
	var violations []string
	var vmu sync.Mutex
	q.order.onPop = func(f *fairOrder, chosen string) {
		if f.inFlight[chosen] < f.perNamespace {
			return
		}
		for ns := range f.spaces {
			if ns != chosen && f.inFlight[ns] < f.perNamespace {
				vmu.Lock()
				violations = append(violations, fmt.Sprintf("%s had %d in flight while %s waited with %d", chosen, f.inFlight[chosen], ns, f.inFlight[ns]))
				vmu.Unlock()
			}
		}
	}
	wg := runWorkers(q, workers, func(reconcile.Request) {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	})
	for i := range 2000 {
		ns := "busy"
		if i%5 == 0 {
			ns = fmt.Sprint("small", i%3)
		}
		q.Add(req(ns, fmt.Sprint(rand.IntN(40))))
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	q.ShutDownWithDrain()
	wg.Wait()
	for _, v := range violations {
		t.Error(v)
	}
}
