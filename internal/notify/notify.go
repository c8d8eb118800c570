// Package notify delivers sync events to a generic webhook (the JSON
// record, HMAC-SHA256-signed like GitHub's webhooks) or a Slack-compatible
// incoming webhook. It knows nothing of Applications: the controller
// builds the Message, this package sends it once; retries are the caller's.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/egress"
)

// Headers of a generic webhook delivery.
const (
	// SignatureHeader is "sha256=" and the hex HMAC-SHA256 of the body under the Secret's hmacKey.
	SignatureHeader = "X-Keyless-Signature-256"
	// EventHeader is the event (Synced, SyncFailed, HealthDegraded, DriftReverted).
	EventHeader = "X-Keyless-Event"
	// DeliveryHeader is unique per message (the same across its retries).
	DeliveryHeader = "X-Keyless-Delivery"
)

// ErrConfig is a notification that cannot be sent until its Secret changes.
var ErrConfig = errors.New("notification configuration")

// Message is one event to deliver.
type Message struct {
	// Event is one of kv1.NotificationEvents.
	Event string
	// Delivery identifies the message across retries (NewDelivery).
	Delivery string
	// Record is the JSON body of a generic webhook.
	Record []byte
	// Text is the one-line human summary a Slack message shows.
	Text string
}

// Target is where one notification goes.
type Target struct {
	// Type is kv1.NotifyWebhook or kv1.NotifySlack.
	Type string
	// Address is the URL posted to.
	Address string
	// HMACKey signs a webhook's body (required for kv1.NotifyWebhook).
	HMACKey []byte
}

// Sender posts messages through one guarded HTTP client.
type Sender struct {
	// HTTP is the client (egress.NewClient).
	HTTP *http.Client
	// AllowInsecureHTTP lets Address be http://.
	AllowInsecureHTTP bool
}

// NewDelivery returns a random delivery ID.
func NewDelivery() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Sign returns the SignatureHeader value of body under key.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send posts m to t once. A *egress.StatusError reports a refused delivery;
// ErrConfig one that cannot succeed until the configuration changes.
func (s *Sender) Send(ctx context.Context, t Target, m Message) error {
	if _, err := egress.CheckURL("the notification Secret's "+kv1.NotificationAddressKey, t.Address, s.AllowInsecureHTTP); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var body []byte
	switch t.Type {
	case kv1.NotifyWebhook:
		if len(t.HMACKey) == 0 {
			return fmt.Errorf("%w: a webhook notification needs the Secret key %q", ErrConfig, kv1.NotificationHMACKey)
		}
		body = m.Record
	case kv1.NotifySlack:
		b, err := json.Marshal(map[string]string{"text": m.Text})
		if err != nil {
			return err
		}
		body = b
	default:
		return fmt.Errorf("%w: unknown type %q", ErrConfig, t.Type)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Address, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keyless")
	if t.Type == kv1.NotifyWebhook {
		req.Header.Set(SignatureHeader, Sign(t.HMACKey, body))
		req.Header.Set(EventHeader, m.Event)
		req.Header.Set(DeliveryHeader, m.Delivery)
	}
	if _, err := egress.Do(ctx, s.HTTP, req); err != nil {
		var se *egress.StatusError
		if errors.As(err, &se) {
			// Only the status code: the answer of an address a tenant chose
			// (an internal service, say) is not shown back in an Event.
			se.Body = ""
		}
		return fmt.Errorf("posting %s to the %s notification: %w", m.Event, t.Type, err)
	}
	return nil
}

// Permanent reports whether retrying err cannot help.
func Permanent(err error) bool {
	var se *egress.StatusError
	return errors.Is(err, ErrConfig) || errors.Is(err, egress.ErrRefusedAddress) || (errors.As(err, &se) && se.Permanent())
}
