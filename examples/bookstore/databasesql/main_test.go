package main

import (
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/examples/bookstore/internal/bookstoretest"
)

// TestBookstore runs the example's migrate and run against real servers and
// checks where each query ran (bookstoretest.Run).
func TestBookstore(t *testing.T) { bookstoretest.Run(t, run) }
