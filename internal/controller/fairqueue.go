package controller

import (
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// fairQueue is the Application controller's work queue: client-go's
// rate-limiting workqueue (an item queued at most once, never handed out
// again while a worker holds it, re-queued after Done when added
// meanwhile; delays, backoff, shutdown and the workqueue_* metrics), whose
// storage is a fairOrder: one FIFO per namespace, handed out round robin,
// and a namespace with perNamespace Applications in flight waits while
// another namespace has one waiting. It keeps controller-runtime's
// priorities (priorityqueue.PriorityQueue): a change goes before the
// initial list of a restart.
type fairQueue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	order       *fairOrder
	rateLimiter workqueue.TypedRateLimiter[reconcile.Request]
}

var _ priorityqueue.PriorityQueue[reconcile.Request] = &fairQueue{}

// newFairQueue returns a fair queue named name (its metrics' name label;
// "" registers none) that lets one namespace hold at most perNamespace
// workers while another namespace waits (at least 1).
func newFairQueue(name string, perNamespace int, rateLimiter workqueue.TypedRateLimiter[reconcile.Request]) *fairQueue {
	order := newFairOrder(perNamespace)
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[reconcile.Request]{Name: name, Queue: order})
	delaying := workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[reconcile.Request]{Name: name, Queue: q})
	return &fairQueue{
		TypedRateLimitingInterface: workqueue.NewTypedRateLimitingQueueWithConfig(rateLimiter,
			workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Name: name, DelayingQueue: delaying}),
		order: order, rateLimiter: rateLimiter,
	}
}

// fairQueueFor is controller.Options.NewQueue for a fair queue.
func fairQueueFor(perNamespace int) func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return func(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		return newFairQueue(name, perNamespace, rl)
	}
}

// Add queues item at the default priority.
func (q *fairQueue) Add(item reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{}, item)
}

// AddAfter queues item once after has passed.
func (q *fairQueue) AddAfter(item reconcile.Request, after time.Duration) {
	q.AddWithOpts(priorityqueue.AddOpts{After: after}, item)
}

// AddRateLimited queues item after its backoff.
func (q *fairQueue) AddRateLimited(item reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, item)
}

// AddWithOpts queues items at o.Priority (the highest asked for wins), after
// o.After or, when o.RateLimited, after the shorter of it and the backoff.
func (q *fairQueue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	for _, item := range items {
		after := o.After
		if o.RateLimited {
			if rl := q.rateLimiter.When(item); after <= 0 || rl < after {
				after = rl
			}
		}
		q.order.want(item, ptr.Deref(o.Priority, 0))
		if after > 0 {
			q.TypedRateLimitingInterface.AddAfter(item, after)
		} else {
			q.TypedRateLimitingInterface.Add(item)
		}
	}
}

// Get hands out the next item (see fairOrder.Pop).
func (q *fairQueue) Get() (reconcile.Request, bool) {
	item, _, shutdown := q.GetWithPriority()
	return item, shutdown
}

// GetWithPriority hands out the next item and the priority it was queued at.
func (q *fairQueue) GetWithPriority() (reconcile.Request, int, bool) {
	item, shutdown := q.TypedRateLimitingInterface.Get()
	if shutdown {
		return item, 0, true
	}
	return item, q.order.priorityOf(item), false
}

// Done ends a worker's hold on item: its namespace's count goes down first,
// then the workqueue re-queues item if it was added meanwhile.
func (q *fairQueue) Done(item reconcile.Request) {
	q.order.done(item)
	q.TypedRateLimitingInterface.Done(item)
}

// fairOrder is the storage of a client-go workqueue (workqueue.Queue): the
// workqueue calls Push, Touch, Len and Pop under its own lock and decides
// deduplication and processing; fairOrder decides only which queued item
// a free worker takes. Its own lock guards what Done (outside the
// workqueue's lock) changes.
type fairOrder struct {
	mu           sync.Mutex
	perNamespace int
	spaces       map[string]*namespaceFIFO
	// inFlight counts each namespace's items handed out and not yet Done;
	// handed is the priority each of them was queued at.
	inFlight map[string]int
	handed   map[reconcile.Request]int
	// wanted is the highest priority asked for each item since it was last
	// handed out; a Push or Touch places the item at it.
	wanted map[reconcile.Request]int
	// served counts Pops; lastServed is each namespace's count at its last
	// one, so the namespace served longest ago goes first. It holds one
	// entry per namespace ever served: the controller's --namespaces.
	served     uint64
	lastServed map[string]uint64
	n          int
	// onPop, when set, sees each choice before it is counted (tests).
	onPop func(f *fairOrder, chosen string)
}

var _ workqueue.Queue[reconcile.Request] = &fairOrder{}

func newFairOrder(perNamespace int) *fairOrder {
	return &fairOrder{
		perNamespace: max(perNamespace, 1),
		spaces:       map[string]*namespaceFIFO{},
		inFlight:     map[string]int{},
		handed:       map[reconcile.Request]int{},
		wanted:       map[reconcile.Request]int{},
		lastServed:   map[string]uint64{},
	}
}

// want records that item was asked for at priority.
func (f *fairOrder) want(item reconcile.Request, priority int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.wanted[item]; !ok || priority > p {
		f.wanted[item] = priority
	}
}

// Push queues item last among its namespace's items of its priority.
func (f *fairOrder) Push(item reconcile.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.spaces[item.Namespace]
	if s == nil {
		s = &namespaceFIFO{levels: map[int][]reconcile.Request{}, queued: map[reconcile.Request]int{}}
		f.spaces[item.Namespace] = s
	}
	s.push(item, f.wanted[item])
	f.n++
}

// Touch is an Add of an item already queued: asked for at a higher
// priority, it moves last among the items of that priority.
func (f *fairOrder) Touch(item reconcile.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.spaces[item.Namespace]
	if s == nil {
		return
	}
	if p, ok := s.queued[item]; ok && f.wanted[item] > p {
		s.remove(item)
		s.push(item, f.wanted[item])
	}
}

// Len is how many items are queued.
func (f *fairOrder) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Pop takes the next item for a free worker; the workqueue calls it only
// when Len > 0. The namespace is chosen, in order: one below perNamespace
// items in flight (or, when every waiting namespace is at it, the one with
// fewest: a worker never idles while an item waits); the highest priority
// waiting; the namespace served longest ago (round robin); its name. Within
// the namespace, its oldest item of that priority.
func (f *fairOrder) Pop() reconcile.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var best string
	var bestS *namespaceFIFO
	for ns, s := range f.spaces {
		if bestS == nil || f.before(ns, s, best, bestS) {
			best, bestS = ns, s
		}
	}
	if f.onPop != nil {
		f.onPop(f, best)
	}
	item, priority := bestS.pop()
	if bestS.len() == 0 {
		delete(f.spaces, best)
	}
	f.n--
	f.served++
	f.lastServed[best] = f.served
	f.inFlight[best]++
	f.handed[item] = priority
	delete(f.wanted, item)
	return item
}

// before reports whether namespace a (queue sa) goes before b (queue sb).
func (f *fairOrder) before(a string, sa *namespaceFIFO, b string, sb *namespaceFIFO) bool {
	fa, fb := f.inFlight[a], f.inFlight[b]
	if ca, cb := fa >= f.perNamespace, fb >= f.perNamespace; ca != cb {
		return cb
	} else if ca && fa != fb {
		return fa < fb
	}
	if pa, pb := sa.head(), sb.head(); pa != pb {
		return pa > pb
	}
	if la, lb := f.lastServed[a], f.lastServed[b]; la != lb {
		return la < lb
	}
	return a < b
}

// priorityOf is the priority item was handed out at.
func (f *fairOrder) priorityOf(item reconcile.Request) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handed[item]
}

// done releases item's hold on its namespace's share.
func (f *fairOrder) done(item reconcile.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.handed[item]; !ok {
		return
	}
	delete(f.handed, item)
	if f.inFlight[item.Namespace]--; f.inFlight[item.Namespace] <= 0 {
		delete(f.inFlight, item.Namespace)
	}
}

// namespaceFIFO is one namespace's queued items: a FIFO per priority.
type namespaceFIFO struct {
	levels map[int][]reconcile.Request
	// queued is each queued item's priority.
	queued map[reconcile.Request]int
}

func (s *namespaceFIFO) len() int { return len(s.queued) }

func (s *namespaceFIFO) push(item reconcile.Request, priority int) {
	s.levels[priority] = append(s.levels[priority], item)
	s.queued[item] = priority
}

// head is the highest priority with an item queued; s is not empty.
func (s *namespaceFIFO) head() int {
	first, top := true, 0
	for p := range s.levels {
		if first || p > top {
			first, top = false, p
		}
	}
	return top
}

// pop takes the oldest item of the highest priority; s is not empty.
func (s *namespaceFIFO) pop() (reconcile.Request, int) {
	p := s.head()
	level := s.levels[p]
	item := level[0]
	level[0] = reconcile.Request{}
	s.setLevel(p, level[1:])
	delete(s.queued, item)
	return item, p
}

// remove takes item out of its level.
func (s *namespaceFIFO) remove(item reconcile.Request) {
	p := s.queued[item]
	level := s.levels[p]
	for i, it := range level {
		if it == item {
			s.setLevel(p, append(level[:i:i], level[i+1:]...))
			break
		}
	}
	delete(s.queued, item)
}

func (s *namespaceFIFO) setLevel(p int, level []reconcile.Request) {
	if len(level) == 0 {
		delete(s.levels, p)
		return
	}
	s.levels[p] = level
}
