"""A worker whose broker restarted empty created its topics again by asking about them:
aiokafka asks for metadata with Metadata v1, under which the broker creates every topic
asked about with its default partition count (Tansu: 4). ``transactions`` came back with
4 partitions instead of 6, a table's changelog with 4 instead of its table's 6, before
``ecap topics create`` could create them right. Fixed by
``ecap.patches.aiokafka_no_auto_create``."""
