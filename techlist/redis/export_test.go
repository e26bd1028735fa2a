package redis

import "time"

// SetNow makes c read the time from now, so tests can move a page past its
// deadlines without waiting.
func SetNow(c *Cache, now func() time.Time) { c.now = now }
