package config

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/joho/godotenv"
)

// Getenv returns a getenv that prefers the real environment, through
// lookup, and falls back to the .env file at path when it exists. A missing
// file is fine; a malformed one is an error.
func Getenv(lookup func(string) (string, bool), path string) (func(string) string, error) {
	file, err := godotenv.Read(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		file = nil
	}
	return func(name string) string {
		if v, ok := lookup(name); ok {
			return v
		}
		return file[name]
	}, nil
}
