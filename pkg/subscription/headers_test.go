package subscription

import "testing"

func TestReservedHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"webhook-id": true, "Webhook_Id": true, "WEBHOOK_SIGNATURE": true, "webhook-anything": true,
		"X-Hub-Signature-256": true, "X-Hub-Signature_256": true, "x_hub_signature": true,
		"Content_Type": true, "authorization": true, "User_Agent": true, "traceparent": true, "Transfer_Encoding": true,
		"X-Team": false, "X_Team": false, "Webhook": false, "X-Hub": false, "Authorization2": false,
	} {
		if got := ReservedHeader(name); got != want {
			t.Errorf("ReservedHeader(%q) = %v, want %v", name, got, want)
		}
	}
}
