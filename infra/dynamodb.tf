# Two tables, keyed the way engine.store reads them: pk (S, HASH) + sk (S, RANGE).
# config: the schedule, calendar and override documents (overrides expire through expires_at).
# state:  per-service baselines (what to restore) and the tick lease.

resource "aws_dynamodb_table" "config" {
  name                        = "${var.name_prefix}-config"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  # Every write as its key only (infra/streams.tf): the edits function reads the document
  # from the table when it acts, so the newest write wins and no document is copied into the
  # stream or the function's event.
  stream_enabled   = var.stream_edits
  stream_view_type = var.stream_edits ? "KEYS_ONLY" : null

  # DynamoDB deletes expired items lazily (days later); the engine ignores them on its own.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.table_kms_key_arn
  }

  tags = local.tags
}

resource "aws_dynamodb_table" "state" {
  name                        = "${var.name_prefix}-state"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  # The baselines are the only record of the capacity to restore: keep them recoverable.
  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.table_kms_key_arn
  }

  tags = local.tags
}
