// Package hostfwd forwards host ports into a running instance's network
// namespace (`unetes forward`). It is the next milestone and holds no code yet.
package hostfwd
