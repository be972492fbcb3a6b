"""Lambda handlers (`archiver.aws.handlers`) and the small modules they use; needs the `[aws]` extra."""
