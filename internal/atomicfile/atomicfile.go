// Package atomicfile writes output files all or nothing: the content goes
// to a temporary file beside the target and is renamed over it only once
// complete and synced, so a failure never leaves a truncated file nor
// clobbers the one already there.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File is a pending replacement of path. Write to it, then Commit; Abort (or
// a failed Commit) removes the temporary file and leaves path as it was.
type File struct {
	*os.File
	path string
	perm os.FileMode
	done bool
}

// Create starts writing path. The temporary file is in path's directory
// (a rename is atomic only within one file system) and named after it,
// hidden, so a leftover from a killed process says what it was.
func Create(path string, perm os.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &File{File: f, path: path, perm: perm}, nil
}

// Path is the file that Commit replaces.
func (f *File) Path() string { return f.path }

// Commit syncs the temporary file and renames it over path. On any error
// the temporary file is removed and path is untouched.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %s: already committed or aborted", f.path)
	}
	f.done = true
	tmp := f.Name()
	// Sync before rename: otherwise a crash can leave the new name pointing
	// at a file whose data never reached the disk.
	err := f.Sync()
	if err == nil {
		err = f.Chmod(f.perm)
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	// Make the rename itself durable; not every platform can sync a
	// directory, and the data is already safe, so a failure here is not one.
	if d, err := os.Open(filepath.Dir(f.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Abort discards what was written. It does nothing after Commit, so it can
// be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// WriteFile is os.WriteFile, all or nothing.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// CommitAll commits files in order, after aborting them all if any target is
// a directory, the one failure a rename can be expected to meet once the data
// is written; a group of files (a report) is then replaced together or not at
// all. An error from a later rename still leaves the earlier ones done.
func CommitAll(files ...*File) error {
	for _, f := range files {
		if st, err := os.Stat(f.path); err == nil && st.IsDir() {
			for _, g := range files {
				g.Abort()
			}
			return fmt.Errorf("write %s: %w", f.path, errIsDir)
		}
	}
	for i, f := range files {
		if err := f.Commit(); err != nil {
			for _, g := range files[i+1:] {
				g.Abort()
			}
			return err
		}
	}
	return nil
}

var errIsDir = errors.New("is a directory")
