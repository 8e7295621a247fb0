// Package hostfwd forwards host ports into a running instance's network
// namespace (`unetes forward`, `unetes run -p`). The parent listens on the
// host; per connection the child dials the target inside the namespace and
// passes the connected socket back (RootlessKit's builtin port driver), and
// the parent copies kernel socket to kernel socket (splice). hostfwd adds what
// a user needs around it: a spec syntax, safe defaults (127.0.0.1), clear
// errors, and forwards saved in the data dir and restored at start.
package hostfwd
