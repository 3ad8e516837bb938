package fileapi

// OpenedPath opens clientPath for a caller as List, Read and Copy do, with the same
// checks, and returns the host path of the file opened as the kernel reports it. Tests
// use it to see where a client path leads.
func (fsys FS) OpenedPath(clientPath string, admin bool) (string, error) {
	t, err := fsys.locate("open", clientPath, admin)
	if err != nil {
		return "", err
	}
	defer t.file.Close()
	return realPath(t.file)
}
