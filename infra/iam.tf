# The execution role: exactly the API actions the engine calls from the Lambda
# (engine/aws/operations.py, lambda_=True) plus the two CloudWatch Logs actions the runtime
# needs, each on the narrowest resources its API supports, in the allowed regions only.
# tests/test_iam.py proves the action set equals the catalogue and tests/*.tftest.hcl assert the
# planned policy; engine/aws/clients.py refuses any call outside the catalogue.
#
# The policy is built from plain values (jsonencode) rather than aws_iam_policy_document, so that
# `terraform test` with a mock provider can read the planned document.

data "aws_iam_policy_document" "execution_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-tick"
  assume_role_policy = data.aws_iam_policy_document.execution_trust.json
  tags               = local.tags
}

# The ECS, Application Auto Scaling and ELB statements for this account: the same module writes
# them for each target account's role (modules/target-account-role).
module "ecs_access" {
  source = "./modules/ecs-access"

  partition         = local.partition
  account_id        = local.account_id
  regions           = local.allowed_regions
  clusters          = var.clusters
  target_group_arns = var.target_group_arns
  # The tick swaps and restores the rules of these load balancers only (infra/wake.tf).
  wake_load_balancer_arns = var.wake_load_balancers
}

locals {
  target_role_arns = [for account in local.other_accounts : "arn:${local.partition}:iam::${account}:role/${coalesce(var.role_name, "-")}"]

  # Statements every deployment has.
  execution_statements = [
    {
      Sid      = "WriteOwnLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${aws_cloudwatch_log_group.tick.arn}:*"]
    },
    # Its own account id (opt-in by tag spells the own account's services without it). The
    # call needs no permission and takes no resource; granted to say that the tick makes it.
    {
      Sid      = "WhoAmI"
      Effect   = "Allow"
      Action   = ["sts:GetCallerIdentity"]
      Resource = ["*"]
    },
    # The documents are written by people (teiji put); the tick only reads them.
    {
      Sid      = "ReadConfigTable"
      Effect   = "Allow"
      Action   = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"]
      Resource = [aws_dynamodb_table.config.arn]
    },
    # Baselines and leases; baselines are also saved and deleted 100 a transaction.
    {
      Sid    = "StateTable"
      Effect = "Allow"
      Action = [
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:TransactWriteItems",
      ]
      Resource = [aws_dynamodb_table.state.arn]
    },
  ]

  # Statements that exist only when their variable is set, by Sid.
  execution_conditional = {
    # Exactly the role in each allowed other account ...
    AssumeRole = {
      Sid      = "AssumeRoleInOtherAccounts"
      Effect   = "Allow"
      Action   = ["sts:AssumeRole"]
      Resource = local.target_role_arns
    }
    # ... or, with organization_id, only while that account belongs to the organization.
    AssumeRoleInOrganization = {
      Sid       = "AssumeRoleInOtherAccounts"
      Effect    = "Allow"
      Action    = ["sts:AssumeRole"]
      Resource  = local.target_role_arns
      Condition = { StringEquals = { "aws:ResourceOrgID" = [coalesce(var.organization_id, "-")] } }
    }
    # What the tick did, as events on the deployment's bus only.
    PublishEvents = {
      Sid      = "PublishEvents"
      Effect   = "Allow"
      Action   = ["events:PutEvents"]
      Resource = [local.event_bus_arn]
    }
    # Each other account's ExternalId, a SecureString of its own.
    ReadExternalIds = {
      Sid      = "ReadExternalIds"
      Effect   = "Allow"
      Action   = ["ssm:GetParameter"]
      Resource = [for account in local.other_accounts : "${local.external_id_parameter_arn}/${account}"]
    }
    # A customer managed key for those parameters: usable only through SSM, only to decrypt.
    ExternalIdKeyThroughSsm = {
      Sid       = "ExternalIdKeyThroughSsm"
      Effect    = "Allow"
      Action    = ["kms:Decrypt"]
      Resource  = [coalesce(var.external_id_kms_key_arn, "-")]
      Condition = { StringEquals = { "kms:ViaService" = ["ssm.${local.region}.amazonaws.com"] } }
    }
    # The edits function (infra/streams.tf): its event source mapping reads the config table's
    # stream with this role, and sends the position of a batch it gave up on to the queue.
    ReadConfigStream = {
      Sid      = "ReadConfigStream"
      Effect   = "Allow"
      Action   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
      Resource = [coalesce(aws_dynamodb_table.config.stream_arn, "-")]
    }
    EditsFailedQueue = {
      Sid      = "EditsFailedQueue"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage"]
      Resource = [coalesce(one(aws_sqs_queue.edits_failed[*].arn), "-")]
    }
    WriteEditsLogs = {
      Sid      = "WriteEditsLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${coalesce(one(aws_cloudwatch_log_group.edits[*].arn), "-")}:*"]
    }
    # A customer managed table key: usable only through DynamoDB, only for these tables' traffic.
    TableKeyThroughDynamoDB = {
      Sid       = "TableKeyThroughDynamoDB"
      Effect    = "Allow"
      Action    = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
      Resource  = [coalesce(var.table_kms_key_arn, "-")]
      Condition = { StringEquals = { "kms:ViaService" = ["dynamodb.${local.region}.amazonaws.com"] } }
    }
  }
  execution_enabled = {
    AssumeRole               = length(local.other_accounts) > 0 && var.organization_id == null
    AssumeRoleInOrganization = length(local.other_accounts) > 0 && var.organization_id != null
    ReadExternalIds          = length(local.other_accounts) > 0
    PublishEvents            = var.event_bus_name != ""
    ExternalIdKeyThroughSsm  = length(local.other_accounts) > 0 && var.external_id_kms_key_arn != null
    TableKeyThroughDynamoDB  = var.table_kms_key_arn != null
    ReadConfigStream         = var.stream_edits
    EditsFailedQueue         = var.stream_edits
    WriteEditsLogs           = var.stream_edits
  }

  execution_policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      local.execution_statements,
      module.ecs_access.statements,
      [for sid, statement in local.execution_conditional : statement if local.execution_enabled[sid]],
    )
  })
}

resource "aws_iam_role_policy" "execution" {
  name   = "teiji-tick"
  role   = aws_iam_role.execution.id
  policy = local.execution_policy

  lifecycle {
    precondition {
      condition     = length(local.other_accounts) == 0 || var.role_name != null
      error_message = "allowed_accounts names other accounts: set role_name, the role teiji assumes in each of them (modules/target-account-role creates it)."
    }
    precondition {
      condition     = alltrue([for account in nonsensitive(keys(var.external_ids)) : contains(local.other_accounts, account)])
      error_message = "external_ids: every key must be one of allowed_accounts other than this account."
    }
  }
}

locals {
  # The planned policy by Sid: what tests/policy.tftest.hcl asserts on.
  execution_by_sid = { for statement in jsondecode(local.execution_policy).Statement : statement.Sid => statement }
}
