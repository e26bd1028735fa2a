package main

import (
	"testing"
)

// As Redis 7.0 answers INFO commandstats (CRLF line ends).
const commandStats = "# Commandstats\r\n" +
	"cmdstat_xadd:calls=3000,usec=12000,usec_per_call=4.00,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_evalsha:calls=3001,usec=90000,usec_per_call=29.99,rejected_calls=2,failed_calls=1\r\n" +
	"cmdstat_client|setinfo:calls=4,usec=2,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n"

func TestCommandCalls(t *testing.T) {
	got, err := commandCalls(commandStats)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"xadd": 3000, "evalsha": 3001, "client|setinfo": 4}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("%s: got %d calls, want %d", name, got[name], n)
		}
	}
	for _, bad := range []string{"cmdstat_xadd:usec=3\r\n", "cmdstat_xadd:calls=x,usec=3\r\n", "cmdstat_xadd\r\n"} {
		if _, err := commandCalls(bad); err == nil {
			t.Errorf("commandCalls(%q): got no error", bad)
		}
	}
}

func TestAddCallsAndSpread(t *testing.T) {
	before := []map[string]int64{{"xadd": 10, "get": 5}, {"get": 1}, {}}
	after := []map[string]int64{{"xadd": 30, "get": 5}, {"get": 4}, {"xadd": 7}}
	sum := make([]map[string]int64, 3)
	for range 2 { // two measurements of the same counts add up
		for i := range sum {
			sum[i] = addCalls(sum[i], before[i], after[i])
		}
	}
	if sum[0]["xadd"] != 40 || sum[0]["get"] != 0 || sum[1]["get"] != 6 || sum[2]["xadd"] != 14 {
		t.Errorf("got %v, want xadd 40 and get 0 on the first master, get 6 on the second, xadd 14 on the third", sum)
	}
	if got := spreadOver(sum); got != 2 {
		t.Errorf("spreadOver: got %d masters with XADDs, want 2", got)
	}
}
