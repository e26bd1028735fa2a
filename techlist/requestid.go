package techlist

import "context"

type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the request being served, so
// that calls made for it (the client-app's to the api-server) pass it on.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
