package main

import (
	"github.com/alicebob/miniredis/v2"
)

// startRedis starts miniredis on addr. Keys with a TTL expire as the wall
// clock passes, as on a real Redis (miniredis's default, made for unit
// tests, is to expire them only when told).
func startRedis(addr string) (*miniredis.Miniredis, error) {
	r := miniredis.NewMiniRedis()
	r.ClockTTL(true)
	if err := r.StartAddr(addr); err != nil {
		return nil, err
	}
	return r, nil
}
