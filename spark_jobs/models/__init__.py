"""Pure customer models (RFM, CLV): numbers in, numbers out, no I/O."""
