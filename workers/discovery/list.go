package discovery

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Instance is one running service instance: its $SRV.INFO reply joined
// with its $SRV.STATS reply.
type Instance struct {
	Name        string            `json:"name"`
	ID          string            `json:"id"`
	Version     string            `json:"version"`
	Description string            `json:"description,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Started is when the instance started (zero if its stats did not
	// answer in time).
	Started   time.Time  `json:"started,omitzero"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one endpoint of an instance with its stats.
type Endpoint struct {
	Name       string `json:"name"`
	Subject    string `json:"subject"`
	QueueGroup string `json:"queue_group,omitempty"`
	Requests   int    `json:"requests"`
	Errors     int    `json:"errors"`
	LastError  string `json:"last_error,omitempty"`
	// AverageProcessing is the mean time a request took.
	AverageProcessing time.Duration `json:"average_processing_time"`
	// Data is the service's own stats for the endpoint (the runner's
	// stats for a worker role, the edge's counters for an edge).
	Data json.RawMessage `json:"data,omitempty"`
}

// Requests sums the requests of every endpoint.
func (i Instance) Requests() (requests, errors int) {
	for _, e := range i.Endpoints {
		requests += e.Requests
		errors += e.Errors
	}
	return requests, errors
}

// List asks every micro service on nc for its info and stats and returns
// the instances that answered within wait (a short window: there is no way
// to know how many will answer), sorted by name and id. An instance that
// answered only one of the two is listed with what it gave.
func List(ctx context.Context, nc *nats.Conn, wait time.Duration) ([]Instance, error) {
	infoSubj, err := micro.ControlSubject(micro.InfoVerb, "", "")
	if err != nil {
		return nil, fmt.Errorf("discovery: list: %w", err)
	}
	statsSubj, err := micro.ControlSubject(micro.StatsVerb, "", "")
	if err != nil {
		return nil, fmt.Errorf("discovery: list: %w", err)
	}
	inbox := nc.NewRespInbox()
	replies := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, fmt.Errorf("discovery: list: subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for _, subj := range []string{infoSubj, statsSubj} {
		if err := nc.PublishRequest(subj, inbox, nil); err != nil {
			return nil, fmt.Errorf("discovery: list: request %s: %w", subj, err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, max(wait, time.Second))
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return nil, fmt.Errorf("discovery: list: flush: %w", err)
	}

	byID := map[string]*Instance{}
	stats := map[string]micro.Stats{}
	timer := time.NewTimer(wait)
	defer timer.Stop()
collect:
	for {
		select {
		case m := <-replies:
			collectReply(m.Data, byID, stats)
		case <-timer.C:
			break collect
		case <-ctx.Done():
			return nil, fmt.Errorf("discovery: list: %w", ctx.Err())
		}
	}
	out := make([]Instance, 0, len(byID)+len(stats))
	for id, st := range stats {
		if _, ok := byID[id]; !ok {
			byID[id] = &Instance{Name: st.Name, ID: id, Version: st.Version, Metadata: st.Metadata, Endpoints: []Endpoint{}}
		}
	}
	for id, in := range byID {
		merge(in, stats[id])
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// collectReply files one $SRV.INFO or $SRV.STATS reply by its type.
func collectReply(data []byte, byID map[string]*Instance, stats map[string]micro.Stats) {
	var head struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	if json.Unmarshal(data, &head) != nil || head.ID == "" {
		return
	}
	switch head.Type {
	case micro.InfoResponseType:
		var info micro.Info
		if json.Unmarshal(data, &info) != nil {
			return
		}
		in := &Instance{Name: info.Name, ID: info.ID, Version: info.Version, Description: info.Description, Metadata: info.Metadata, Endpoints: []Endpoint{}}
		for _, e := range info.Endpoints {
			in.Endpoints = append(in.Endpoints, Endpoint{Name: e.Name, Subject: e.Subject, QueueGroup: e.QueueGroup})
		}
		byID[info.ID] = in
	case micro.StatsResponseType:
		var st micro.Stats
		if json.Unmarshal(data, &st) != nil {
			return
		}
		stats[st.ID] = st
	}
}

// merge adds the stats st to in's endpoints (matched by name; endpoints
// only the stats know are added).
func merge(in *Instance, st micro.Stats) {
	if st.ID == "" {
		return
	}
	in.Started = st.Started
	for _, es := range st.Endpoints {
		i := slices.IndexFunc(in.Endpoints, func(e Endpoint) bool { return e.Name == es.Name })
		if i < 0 {
			in.Endpoints = append(in.Endpoints, Endpoint{Name: es.Name, Subject: es.Subject, QueueGroup: es.QueueGroup})
			i = len(in.Endpoints) - 1
		}
		e := &in.Endpoints[i]
		e.Requests, e.Errors, e.LastError = es.NumRequests, es.NumErrors, es.LastError
		e.AverageProcessing = es.AverageProcessingTime
		if len(es.Data) > 0 && string(es.Data) != "null" {
			e.Data = es.Data
		}
	}
}
