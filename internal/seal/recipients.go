package seal

import (
	"fmt"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
)

// parseAgeRecipients parses snapshot recipients as the age command line takes
// them: age1... public keys and SSH public keys (ssh-ed25519, ssh-rsa). The
// error names the key by its position.
func parseAgeRecipients(keys []string) ([]age.Recipient, error) {
	var rs []age.Recipient
	for i, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" || strings.HasPrefix(k, "#") {
			continue
		}
		var (
			r   age.Recipient
			err error
		)
		if strings.HasPrefix(k, "ssh-") {
			r, err = agessh.ParseRecipient(k)
		} else {
			var p []age.Recipient
			if p, err = age.ParseRecipients(strings.NewReader(k)); err == nil {
				r = p[0]
			}
		}
		if err != nil {
			return nil, fmt.Errorf("key #%d is not a valid age or SSH public key", i+1)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("no age recipient")
	}
	return rs, nil
}

// CheckAgeRecipients reports whether every key parses as a snapshot recipient
// (AGE_PUBLIC_KEYS), so a typo is refused with the configuration instead of
// failing the first scheduled snapshot.
func CheckAgeRecipients(keys []string) error {
	_, err := parseAgeRecipients(keys)
	return err
}
