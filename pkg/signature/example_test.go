package signature_test

import (
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/hookline/hookline/pkg/signature"
)

// A receiver checks every request before handling it. The secret is the one
// Hookline returned when the subscription was created; during a rotation,
// list the old and the new one.
func ExampleVerifier_Middleware() {
	secret, err := signature.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	v := &signature.Verifier{Secrets: []signature.Secret{secret}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The signature is good: dedupe on webhook-id, then do the work.
		_ = r.Header.Get(signature.HeaderID)
		w.WriteHeader(http.StatusNoContent)
	})
	http.Handle("POST /webhooks", v.Middleware(handler))
}

func ExampleSign() {
	secret, err := signature.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	body := []byte(`{"test": 2432232314}`)
	fmt.Println(signature.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), body, secret))
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}
