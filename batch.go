package mapkv

import (
	"fmt"
	"sync"
	"time"

	"github.com/mapkv/mapkv/page"
)

// batcher gathers concurrent Batch calls into shared commits.
type batcher struct {
	mu      sync.Mutex
	queue   []*batchCall
	leading bool
}

type batchCall struct {
	fn    func(*Tx) error
	err   error
	panic any
	done  chan struct{}
}

// PanicError is returned by Batch when the function panicked while it ran
// with other callers' functions; the transaction went on without it.
type PanicError struct{ Value any }

// Error describes the panic.
func (e *PanicError) Error() string {
	return fmt.Sprintf("mapkv: batch function panicked: %v", e.Value)
}

// Batch runs fn in a write transaction shared with other goroutines'
// concurrent Batch calls, so that they pay for one commit (one sync)
// together. While one batch commits, new calls queue up; the next batch
// takes all of them (up to Options.MaxBatchSize) at once, so there is no
// fixed delay to wait out (unless Options.MaxBatchDelay asks for one).
//
// Each fn runs inside a savepoint: if it returns an error, its own changes
// are undone and the error is returned to its caller, while the others
// commit. fn may therefore run together with unrelated functions, but
// never twice. Batch returns once the commit that holds fn's changes is
// durable.
func (db *DB) Batch(fn func(*Tx) error) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function", ErrInvalidOptions)
	}
	c := &batchCall{fn: fn, done: make(chan struct{})}
	b := &db.batch
	b.mu.Lock()
	b.queue = append(b.queue, c)
	lead := !b.leading
	if lead {
		b.leading = true
	}
	b.mu.Unlock()
	if lead {
		db.leadBatches(c)
	}
	<-c.done
	if c.panic != nil {
		panic(c.panic)
	}
	return c.err
}

// leadBatches commits batches until the leader's own call is done, then
// hands the lead to a new goroutine if calls are still waiting.
func (db *DB) leadBatches(own *batchCall) {
	b := &db.batch
	for {
		if d := db.opts.MaxBatchDelay; d > 0 {
			time.Sleep(d)
		}
		b.mu.Lock()
		n := min(len(b.queue), db.opts.MaxBatchSize)
		calls := append([]*batchCall(nil), b.queue[:n]...)
		b.queue = b.queue[n:]
		b.mu.Unlock()
		db.runBatch(calls)
		select {
		case <-own.done:
			b.mu.Lock()
			if len(b.queue) == 0 {
				b.leading = false
				b.mu.Unlock()
				return
			}
			b.mu.Unlock()
			go db.leadBatches(&batchCall{done: closed})
			return
		default:
		}
	}
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (db *DB) runBatch(calls []*batchCall) {
	failed := make([]bool, len(calls))
	err := db.Update(func(tx *Tx) error {
		for i, c := range calls {
			sp := tx.savepoint()
			err, p := callSafely(c.fn, tx)
			if p != nil {
				if fe := asFault(p); fe != nil {
					return fe
				}
				c.panic = p
			}
			if err != nil || p != nil {
				tx.restore(sp)
				c.err = err
				failed[i] = true
			}
		}
		return nil
	})
	for i, c := range calls {
		if !failed[i] {
			c.err = err
		}
		close(c.done)
	}
}

func callSafely(fn func(*Tx) error, tx *Tx) (err error, p any) {
	defer func() {
		if r := recover(); r != nil {
			p = r
		}
	}()
	return fn(tx), nil
}

// savepoint is the state of a write transaction's buckets, to undo one
// batched function's changes.
type savepoint struct {
	buckets   []bucketState
	freeRoots int
	err       error
}

type bucketState struct {
	b        *Bucket
	ref      page.Ref
	pending  *pendingSet
	children map[string]*Bucket
	dirty    bool
	deleted  bool
}

func (tx *Tx) savepoint() *savepoint {
	sp := &savepoint{freeRoots: len(tx.freeRoots), err: tx.err}
	var walk func(b *Bucket)
	walk = func(b *Bucket) {
		st := bucketState{b: b, ref: b.ref, dirty: b.dirty, deleted: b.deleted}
		if b.pending != nil {
			st.pending = b.pending.clone() // O(1)
		}
		if b.children != nil {
			st.children = make(map[string]*Bucket, len(b.children))
			for k, c := range b.children {
				st.children[k] = c
				walk(c)
			}
		}
		sp.buckets = append(sp.buckets, st)
	}
	walk(tx.root)
	return sp
}

func (tx *Tx) restore(sp *savepoint) {
	for _, st := range sp.buckets {
		b := st.b
		b.ref, b.dirty, b.deleted = st.ref, st.dirty, st.deleted
		b.pending = st.pending
		b.children = st.children
	}
	tx.freeRoots = tx.freeRoots[:sp.freeRoots]
	tx.err = sp.err
}
