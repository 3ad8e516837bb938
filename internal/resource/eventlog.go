package resource

// logEntry is one change recorded in an event log. The resources are the store's own
// immutable values; watchers copy them on delivery.
type logEntry struct {
	typ EventType
	id  string
	res Resource
	old Resource
}

// eventLog is a bounded ring of the latest changes of one (namespace, type), addressed by
// sequence number. It grows on demand up to max entries, then overwrites the oldest.
// Entries with sequence numbers in [first, next) are available. It is guarded by the store's
// lock.
type eventLog struct {
	max   int
	buf   []logEntry
	first uint64
	next  uint64
	// wake, when not nil, is closed on the next append to wake the waiting watchers.
	wake chan struct{}
}

// append records e and wakes the watchers waiting for it.
func (l *eventLog) append(e logEntry) {
	if len(l.buf) < l.max {
		// While growing, first is 0 and the entry with sequence s sits at index s == s%max.
		l.buf = append(l.buf, e)
	} else {
		l.buf[l.next%uint64(l.max)] = e
		l.first++
	}
	l.next++
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
}

// read appends to dst up to limit entries starting at sequence from. overflow reports that
// entries at from were already overwritten.
func (l *eventLog) read(from uint64, dst []logEntry, limit int) (entries []logEntry, next uint64, overflow bool) {
	if from < l.first {
		return dst, from, true
	}
	for s := from; s < l.next && len(dst) < limit; s++ {
		dst = append(dst, l.buf[s%uint64(l.max)])
		from = s + 1
	}
	return dst, from, false
}

// waitChan returns a channel closed by the next append.
func (l *eventLog) waitChan() <-chan struct{} {
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return l.wake
}
