package mapkv

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// faultError is what a fault in the mapping becomes: another process cut
// the file short beneath us (SIGBUS), or a write hit the read-only mapping.
type faultError struct{ addr uintptr }

func (e *faultError) Error() string {
	return fmt.Sprintf("mapkv: fault accessing the mapped file at address %#x (was the file truncated by another process?)", e.addr)
}

func (e *faultError) Unwrap() error { return ErrCorrupt }

// guard runs fn with faults on the mapping turned into errors instead of a
// crash of the process. Panics that are not memory faults pass through.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if fe := asFault(r); fe != nil {
				err = fe
				return
			}
			panic(r)
		}
	}()
	return fn()
}

func asFault(r any) error {
	re, ok := r.(runtime.Error)
	if !ok {
		return nil
	}
	if a, ok := re.(interface{ Addr() uintptr }); ok {
		return &faultError{addr: a.Addr()}
	}
	return nil
}
