package memchain

import "errors"

// ErrClosed is returned by every method of a [Store] after [Store.Close].
var ErrClosed = errors.New("memchain: store is closed")
