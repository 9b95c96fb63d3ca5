package vaultsim

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// rsaKeyPEM returns a 2048-bit RSA key as Vaultwarden writes rsa_key.pem (PKCS#1 PEM).
// The primes come from g so the key is the same for the same seed; crypto/rsa's
// GenerateKey ignores caller-supplied randomness and could not give that.
func rsaKeyPEM(g *gen) ([]byte, error) {
	e := big.NewInt(65537)
	one := big.NewInt(1)
	prime := func() *big.Int {
		for {
			b := g.bytes(128)
			b[0] |= 0xc0 // two top bits: the product has exactly 2048 bits
			b[127] |= 1
			p := new(big.Int).SetBytes(b)
			if !p.ProbablyPrime(20) {
				continue
			}
			pm1 := new(big.Int).Sub(p, one)
			if new(big.Int).GCD(nil, nil, e, pm1).Cmp(one) == 0 {
				return p
			}
		}
	}
	p, q := prime(), prime()
	if p.Cmp(q) == 0 {
		return nil, errors.New("generate rsa key: equal primes")
	}
	pm1, qm1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
	gcd := new(big.Int).GCD(nil, nil, pm1, qm1)
	lcm := new(big.Int).Div(new(big.Int).Mul(pm1, qm1), gcd)
	d := new(big.Int).ModInverse(e, lcm)
	key := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537},
		D:         d,
		Primes:    []*big.Int{p, q},
	}
	key.Precompute()
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("generate rsa key: %w", err)
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), nil
}
