//go:build !linux

package mapkv

import (
	"errors"
	"os"
	"time"

	"github.com/mapkv/mapkv/page"
)

// Without Linux's open-file-description locks there is no shared reader
// table: the data file's flock admits one writer or many readers, each
// process seeing the database as of its Open (see lockfile_linux.go).
const sharedReaders = false

var errNoLockFile = errors.New("lock file not supported on this platform")

type lockFile struct{}

func openLockFile(string, os.FileMode, int) (*lockFile, error) { return nil, errNoLockFile }
func (lf *lockFile) txid() page.TxID                           { return 0 }
func (lf *lockFile) publish(page.TxID)                         {}
func (lf *lockFile) lockWriter(time.Duration) error            { return nil }
func (lf *lockFile) writerAlive() bool                         { return false }
func (lf *lockFile) acquire() (int, error)                     { return 0, nil }
func (lf *lockFile) release(int)                               {}
func (lf *lockFile) announce(int, page.TxID)                   {}
func (lf *lockFile) oldest() (page.TxID, bool)                 { return 0, false }
func (lf *lockFile) slots() []ReaderStat                       { return nil }
func (lf *lockFile) close()                                    {}
func legacyReader(*os.File) bool                               { return false }
func lockLegacy(*os.File) error                                { return nil }

var errLockBusy = errors.New("lock held by another process")
