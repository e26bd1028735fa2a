package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/stack"
)

// TestQueueModeMismatchIsVisible: an api-server in streams mode with only a
// pub/sub worker live accepts writes that nobody will store. It keeps
// accepting them (the stream keeps them), but /readyz fails on queue_mode
// saying why, /api/v1/stats counts the workers by mode, and both programs
// log an error naming QUEUE_MODE. Once a
// streams worker runs, the api-server is ready again and what waited is
// stored. With no worker at all it is ready: the stream buffers by design.
func TestQueueModeMismatchIsVisible(t *testing.T) {
	t.Parallel()
	// With partitions the entries wait in partition streams the pub/sub
	// worker (with its default STREAM_PARTITIONS) must find too.
	for _, partitions := range []string{"1", "3"} {
		t.Run("partitions="+partitions, func(t *testing.T) {
			t.Parallel()
			queueModeMismatch(t, partitions)
		})
	}
}

func queueModeMismatch(t *testing.T, partitions string) {
	env := stackEnv(t)
	env["LOG_FORMAT"] = "text"
	s := stack.New(t, binDir)
	s.APIURL = s.Add(t, "api-server", stack.Environ(env, map[string]string{"QUEUE_MODE": "streams", "STREAM_PARTITIONS": partitions}))
	s.WaitReady(t, "api-server", "/readyz") // no worker at all: ready
	stored := watchStored(t, s)
	first := stack.PostTech(t, s.APIURL, "before any worker "+testenv.Suffix())

	s.Add(t, "worker-server", stack.Environ(env, map[string]string{"QUEUE_MODE": "pubsub"}))
	s.WaitReady(t, "worker-server", "/readyz")
	logged := func(name, what string) {
		t.Helper()
		testenv.Eventually(t, name+" logging "+what, func() bool {
			for _, line := range strings.Split(s.Logs(t, name), "\n") {
				if strings.Contains(line, "level=ERROR") && strings.Contains(line, what) {
					return true
				}
			}
			return false
		})
	}
	logged("worker-server", "QUEUE_MODE differs: this worker runs pubsub")
	var code int
	var body string
	testenv.Eventually(t, "the api-server's /readyz failing on queue_mode", func() bool {
		code, body = fetch(t, http.MethodGet, s.APIURL+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, `"failing":["queue_mode"]`) || !strings.Contains(body, "QUEUE_MODE=streams") {
		t.Errorf("/readyz: got %s, want queue_mode failing with a message naming QUEUE_MODE", body)
	}
	logged("api-server", "QUEUE_MODE differs: this api-server runs streams")
	if _, stats := fetch(t, http.MethodGet, s.APIURL+"/api/v1/stats"); !strings.Contains(stats, `"workers":{"pubsub":1,"streams":0}`) {
		t.Errorf("/api/v1/stats: got %s, want workers: 1 pubsub, 0 streams", stats)
	}
	second := stack.PostTech(t, s.APIURL, "while the modes differ "+testenv.Suffix()) // still 202

	s.Add(t, "worker-server#2", stack.Environ(env, map[string]string{"QUEUE_MODE": "streams"}))
	s.WaitReady(t, "api-server", "/readyz")
	stored(first)
	stored(second)
}
