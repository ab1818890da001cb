"""The statement path below the repositories: the executors that acquire, confine, run and
translate (`executor`), the codecs and session rules of every connection (`codecs`), the pool's
options (`options`), and DSN handling (`dsn`)."""
