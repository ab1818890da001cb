"""Client-side encryption of sensitive agent configs (`secrets`: AES-256-GCM, keys never sent)
and the reader of values a pgcrypto release once stored (`legacy_pgp`)."""
