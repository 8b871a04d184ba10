// Package natsconf holds no code: the directory carries nats-server
// configuration for operators (cluster/, dr/ and permissions.conf, the users
// and per-tier permissions) and permissions_test.go, which runs a real
// server from permissions.conf and checks what each tier may and may not do.
package natsconf
