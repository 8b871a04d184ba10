// Package cli reads the command line and the environment of the natter
// commands (cmd/natter and natter bench, which cmd/natter runs): a flag set
// whose every flag also reads an environment variable (the flag wins, then
// the variable, then the default), and whose every numeric and duration
// flag declares its valid range, checked the same way for the flag and the
// variable. Only commands use it: the packages they configure take config
// structs and never read flags or the environment themselves.
package cli
