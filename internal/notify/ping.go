package notify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxPingBody bounds the error sent with a failure ping (healthchecks.io keeps
// the first 100 kB of a body).
const maxPingBody = 10_000

// Pinger is a dead man's switch in the healthchecks.io style
// (HEALTHCHECK_PING_URL): POST <url>/start when a job begins, <url> when it
// succeeded, <url>/fail with the error as the body when it failed. The
// monitoring side alerts when the success ping stops coming. The URL is a
// capability (whoever knows it can ping): it never appears in a log line,
// an error or a body. A nil *Pinger does nothing.
type Pinger struct {
	url     string
	secrets []string
	client  *http.Client
	log     *slog.Logger
}

// NewPinger returns a pinger for rawURL, nil when rawURL is empty.
func NewPinger(rawURL string, log *slog.Logger) *Pinger {
	if rawURL == "" {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pinger{url: strings.TrimRight(rawURL, "/"), client: &http.Client{Timeout: 10 * time.Second}, log: log}
	p.secrets = []string{rawURL, p.url}
	if u, err := url.Parse(rawURL); err == nil { // the token, wherever it is
		if len(u.Path) > 1 {
			p.secrets = append(p.secrets, u.Path)
		}
		p.secrets = append(p.secrets, u.RawQuery)
	}
	return p
}

// Around pings /start, runs job, and pings success or /fail with job's error.
// A failed ping is logged (never with the URL) and does not change job's
// result: the switch watches the job, it must not break it.
func (p *Pinger) Around(ctx context.Context, what string, job func() error) error {
	if p == nil {
		return job()
	}
	p.ping(ctx, what, "/start", "")
	err := job()
	if err != nil {
		p.ping(ctx, what, "/fail", err.Error())
	} else {
		p.ping(ctx, what, "", "")
	}
	return err
}

func (p *Pinger) ping(ctx context.Context, what, suffix, body string) {
	if err := p.Ping(context.WithoutCancel(ctx), suffix, body); err != nil {
		p.log.Warn("dead man's switch not pinged", "job", what, "ping", strings.TrimPrefix(suffix, "/"), "error", err)
	}
}

// Ping sends one ping: suffix "" (success), "/start" or "/fail"; body is
// scrubbed of URLs and cut to 10 kB. Its error never holds the URL.
func (p *Pinger) Ping(ctx context.Context, suffix, body string) error {
	body = scrub(body, p.secrets)
	if len(body) > maxPingBody {
		body = body[:maxPingBody]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+suffix, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("ping: %s", scrub(err.Error(), p.secrets))
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("ping: %s", scrub(err.Error(), p.secrets))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("ping: answered %s", resp.Status)
	}
	return nil
}
