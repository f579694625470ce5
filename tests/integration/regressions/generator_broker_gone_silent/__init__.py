"""The generator, its broker stopped mid-run, went on producing into its queue and at the
end waited 60 s to report "not acknowledged within 60s" for 40,691 records, with no word
of why; after a broker restart it never delivered them (its idempotent producer's
sequence was gone with the broker's log). Now a run stops within ``BROKER_GONE_S`` with a
message saying how many records were acknowledged and what to do."""
