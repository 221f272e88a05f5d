package store

import "time"

// A time index lists ids in the order of a time each carries (when an
// order or a ride ended): name/<at as Seq of Unix ns>/<id>, empty values.

// TimeKey is id's key in the time index name, at time at.
func TimeKey(name string, at time.Time, id string) string {
	return Key(name, Seq(uint64(at.UnixNano())), id)
}

// Newest is the latest time in the time index name (zero if it is empty).
func (s *Space) Newest(name string) time.Time {
	var newest time.Time
	s.Scan(name+"/", "", true, func(k string, _ []byte) bool {
		newest, _ = parseTimeKey(name, k)
		return false
	})
	return newest
}

// Recent lists the ids of the time index name whose time is at most
// window before its newest one, newest first.
func (s *Space) Recent(name string, window time.Duration) []string {
	var ids []string
	var newest time.Time
	s.Scan(name+"/", "", true, func(k string, _ []byte) bool {
		at, id := parseTimeKey(name, k)
		if newest.IsZero() {
			newest = at
		}
		if at.Before(newest.Add(-window)) {
			return false
		}
		ids = append(ids, id)
		return true
	})
	return ids
}

// parseTimeKey splits a key of the time index name (relative to the
// space) into its time and id.
func parseTimeKey(name, key string) (time.Time, string) {
	n := len(name) + 1 // name and "/"
	if len(key) < n+9 {
		return time.Time{}, ""
	}
	return time.Unix(0, int64(ParseSeq(key[n:n+8]))), key[n+9:]
}
