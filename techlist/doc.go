// Package techlist holds what the three services agree on: the Tech record,
// the message envelope the api-server publishes and the worker-server
// consumes, the event the worker announces, the validation rules for a
// submitted text, and the error codes every API answer uses. It also holds
// what the queue hands out (Delivery) and the errors its adapters report
// (ErrNoSubscribers, ErrQueueFull, ErrDrained, BadEventError), so the code
// above the adapters tests them without importing an adapter.
//
// It imports nothing outside the standard library so the client-app can use
// it without pulling in Redis or MySQL; the adapters live in subpackages
// (mysql, redis) that only the two servers import.
package techlist
