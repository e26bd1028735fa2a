package cacheaside

// WaitFills waits until the cache fills r's misses started have ended.
func WaitFills(r *Reader) { r.misses.filling.Wait() }
