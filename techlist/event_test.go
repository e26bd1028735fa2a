package techlist_test

import (
	"testing"

	"github.com/techlist/techlist"
)

func TestDecodeEvent(t *testing.T) {
	const id = "01890a5d-ac96-774b-bcce-b302099a8057"
	tests := []struct {
		name    string
		payload string
		wantErr bool
	}{
		{"valid", `{"type":"tech.created","tech":{"id":"` + id + `","text":"Go","priority":"high","created_at":"2025-01-02T03:04:05Z","submitted_at":"2025-01-02T03:04:04Z"}}`, false},
		{"not json", `nope`, true},
		{"unknown type", `{"type":"tech.deleted","tech":{"id":"` + id + `","text":"Go","priority":"high","created_at":"2025-01-02T03:04:05Z"}}`, true},
		{"bad id", `{"type":"tech.created","tech":{"id":"1","text":"Go","priority":"high","created_at":"2025-01-02T03:04:05Z"}}`, true},
		{"bad priority", `{"type":"tech.created","tech":{"id":"` + id + `","text":"Go","priority":"urgent","created_at":"2025-01-02T03:04:05Z"}}`, true},
		{"empty text", `{"type":"tech.created","tech":{"id":"` + id + `","text":" ","priority":"low","created_at":"2025-01-02T03:04:05Z"}}`, true},
		{"control character", `{"type":"tech.created","tech":{"id":"` + id + `","text":"a\u0007b","priority":"low","created_at":"2025-01-02T03:04:05Z"}}`, true},
		{"no commit time", `{"type":"tech.created","tech":{"id":"` + id + `","text":"Go","priority":"low"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := techlist.DecodeEvent([]byte(tt.payload))
			if (err != nil) != tt.wantErr {
				t.Errorf("got error %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}
