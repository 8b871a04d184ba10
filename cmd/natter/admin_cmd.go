package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/natter-im/natter/internal/admin"
	"github.com/natter-im/natter/internal/cli"
)

const adminUsage = `usage: natter admin <revoke|ban|unban|sessions|disconnect|erase|conv> [flags]

  revoke --jti ID [--exp UNIX]              revoke one token (by its jti)
  revoke --user ID [--device ID] [--before UNIX]
                                            revoke the user's (device's) tokens issued before a time (default now)
  ban --user ID [--reason TEXT] [--for DURATION | --until UNIX]
                                            ban a user (closes their sessions; default until unban)
  unban --user ID                           lift a ban
  sessions --user ID [--device ID]          list the user's sessions and devices on every edge
  disconnect --user ID [--device ID] [--reason TEXT]
                                            close the user's sessions (one device's, or all): close 4005
  erase --user ID                           erase a user: tombstone their messages (archive bodies blanked), delete their cursors, close their sessions; prints what was removed
  conv inspect --conv ID                    members, member count, last seq, frozen or not
  conv freeze --conv ID [--reason TEXT]     no sends, no member changes (forbidden) until unfrozen
  conv unfreeze --conv ID                   lift a freeze
  conv delete --conv ID [--reason TEXT]     freeze for good, remove a group's members, purge the hot tier, delete the archive
  conv retention --conv ID [--days N] [--messages N] [--hold | --release]
                                            the conversation's own retention limits (0 = keep forever, -1 = its class's) and
                                            legal hold; with none of them, print its retention state

Every command calls the admin API of a natter process (--url) with the admin credential.
`

// runAdmin implements "natter admin": a client of the admin API.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help") {
			fmt.Fprint(stdout, adminUsage)
			return nil
		}
		fmt.Fprint(stderr, adminUsage)
		return usageError{errors.New("admin: want revoke, ban, unban, sessions, disconnect, erase or conv")}
	}
	sub := args[0]
	var path string
	switch sub {
	case "revoke":
		path = admin.PathRevoke
	case "ban":
		path = admin.PathBan
	case "unban":
		path = admin.PathUnban
	case "sessions":
		path = admin.PathSessions
	case "disconnect":
		path = admin.PathDisconnect
	case "erase":
		path = admin.PathErase
	case "conv":
		paths := map[string]string{"inspect": admin.PathConvInspect, "freeze": admin.PathConvFreeze, "unfreeze": admin.PathConvUnfreeze, "delete": admin.PathConvDelete, "retention": admin.PathConvRetention}
		if len(args) > 1 {
			path = paths[args[1]]
		}
		if path == "" {
			fmt.Fprint(stderr, adminUsage)
			return usageError{errors.New("admin conv: want inspect, freeze, unfreeze, delete or retention")}
		}
		sub, args = "conv "+args[1], args[1:]
	default:
		fmt.Fprint(stderr, adminUsage)
		return usageError{fmt.Errorf("admin: unknown command %q (want revoke, ban, unban, sessions, disconnect, erase or conv)", sub)}
	}
	fs := newFlags("natter admin "+sub, "natter admin "+sub+" [flags]", stdout)
	var url string
	var cred secretFlags
	var r admin.Request
	var forDur time.Duration
	var exp, before, until int
	const unset = -2 // conv retention: not given
	days, msgs := unset, unset
	var hold, release bool
	fs.String(&url, "url", "NATTER_ADMIN_URL", "http://127.0.0.1:8080", "base URL of a natter process's admin API (dev, edge: --http; worker: --admin)")
	cred.register(fs, "admin-token", "NATTER_ADMIN_TOKEN", "the admin API's credential")
	if strings.HasPrefix(sub, "conv ") {
		fs.String(&r.Conv, "conv", "", "", "conversation id")
	} else {
		fs.String(&r.User, "user", "", "", "user id")
	}
	if sub != "sessions" && sub != "unban" && sub != "erase" && sub != "conv inspect" && sub != "conv unfreeze" && sub != "conv retention" {
		fs.String(&r.Reason, "reason", "", "", "reason, shown to the client and kept in the audit event")
	}
	switch sub {
	case "sessions", "disconnect":
		fs.String(&r.Device, "device", "", "", "device id: only this device's sessions")
	case "revoke":
		fs.String(&r.JTI, "jti", "", "", "token id to revoke")
		fs.Int(&exp, "exp", "", 0, "the token's exp (Unix seconds): the revocation is kept until then (0 = --max-token-lifetime of the server)", cli.Min(0))
		fs.String(&r.Device, "device", "", "", "device id: revoke only this device's tokens")
		fs.Int(&before, "before", "", 0, "revoke tokens issued before this Unix time (0 = now)", cli.Min(0))
	case "conv retention":
		fs.Int(&days, "days", "", unset, "keep messages this many days (0 = forever, -1 = the class's --retention-*-days)", cli.Min(unset))
		fs.Int(&msgs, "messages", "", unset, "keep the newest this many messages (0 = all, -1 = the class's --retention-*-messages)", cli.Min(unset))
		fs.Bool(&hold, "hold", "", false, "set the legal hold: nothing is removed until --release")
		fs.Bool(&release, "release", "", false, "lift the legal hold")
	case "ban":
		fs.Duration(&forDur, "for", "", 0, "ban duration (0 = until --until, or until unban)", cli.Min[time.Duration](0))
		fs.Int(&until, "until", "", 0, "end of the ban, Unix seconds (0 = until unban)", cli.Min(0))
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	r.Exp, r.Before, r.Until = int64(exp), int64(before), int64(until)
	if sub == "conv retention" {
		if hold && release {
			return usageError{errors.New("--hold and --release: give one")}
		}
		if days != unset {
			r.Days = &days
		}
		if msgs != unset {
			r.Messages = &msgs
		}
		if hold || release {
			r.Hold = &hold
		}
	}
	if forDur > 0 {
		if r.Until != 0 {
			return usageError{errors.New("--for and --until: give one")}
		}
		r.Until = time.Now().Add(forDur).Unix()
	}
	tok, err := cred.get()
	if err != nil {
		return err
	}
	if tok == "" {
		return usageError{errors.New("--admin-token-file (NATTER_ADMIN_TOKEN_FILE) or NATTER_ADMIN_TOKEN: required")}
	}
	body, _ := json.Marshal(r)
	timeout := 15 * time.Second
	if sub == "erase" || sub == "conv delete" {
		timeout = admin.EraseTimeout + 15*time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(url, "/")+path, bytes.NewReader(body))
	if err != nil {
		return usageError{fmt.Errorf("--url (NATTER_ADMIN_URL): %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s: %w", sub, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin %s: %s: %s", sub, resp.Status, bytes.TrimSpace(out))
	}
	fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(out))
	return nil
}
