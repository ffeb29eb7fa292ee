# The execution role: exactly the API actions the engine calls from the Lambda
# (engine/aws/operations.py, lambda_=True) plus the two CloudWatch Logs actions the runtime
# needs, each on the narrowest resources its API supports. tests/test_iam.py proves the action
# set equals the catalogue; engine/aws/clients.py refuses any call outside it.

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

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.tick.arn}:*"]
  }

  statement {
    sid = "Tables"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = [aws_dynamodb_table.config.arn, aws_dynamodb_table.state.arn]
  }

  statement {
    sid       = "Services"
    actions   = ["ecs:DescribeServices", "ecs:UpdateService"]
    resources = local.service_arns
  }

  statement {
    sid       = "Tasks"
    actions   = ["ecs:DescribeTasks"]
    resources = local.task_arns
  }

  statement {
    sid       = "ContainerInstances"
    actions   = ["ecs:DescribeContainerInstances"]
    resources = local.instance_arns
  }

  # ListTasks names the container-instance resource type, but a call without a containerInstance
  # filter (listing a service's tasks) is authorized against "*"; the ecs:cluster condition keeps
  # it to the listed clusters. Read-only.
  statement {
    sid       = "ListTasksInClusters"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]

    condition {
      test     = "ArnLike"
      variable = "ecs:cluster"
      values   = local.cluster_arns
    }
  }

  # DescribeScalableTargets supports no resource-level permission: "*" is the only choice.
  statement {
    sid       = "DescribeScalableTargets"
    actions   = ["application-autoscaling:DescribeScalableTargets"]
    resources = ["*"]
  }

  # A scalable target's ARN ends in a random id, unknown before it exists, so a policy cannot name
  # the targets of given services; the conditions restrict the write to ECS desired counts.
  statement {
    sid       = "RegisterEcsScalableTargets"
    actions   = ["application-autoscaling:RegisterScalableTarget"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "application-autoscaling:service-namespace"
      values   = ["ecs"]
    }

    condition {
      test     = "StringEquals"
      variable = "application-autoscaling:scalable-dimension"
      values   = ["ecs:service:DesiredCount"]
    }
  }

  # Elastic Load Balancing's Describe* actions support no resource-level permission.
  statement {
    sid       = "DescribeTargetHealth"
    actions   = ["elasticloadbalancing:DescribeTargetHealth"]
    resources = ["*"]
  }

  statement {
    sid       = "RepairTargets"
    actions   = ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"]
    resources = local.target_group_arns
  }

  # Other accounts: only the one role name, in any account (the role's trust policy decides who
  # may assume it).
  dynamic "statement" {
    for_each = var.role_name == null ? [] : [var.role_name]

    content {
      sid       = "AssumeRoleInOtherAccounts"
      actions   = ["sts:AssumeRole"]
      resources = ["arn:${local.partition}:iam::*:role/${statement.value}"]
    }
  }

  # A customer managed table key: usable only through DynamoDB, only for these tables' traffic.
  dynamic "statement" {
    for_each = var.table_kms_key_arn == null ? [] : [var.table_kms_key_arn]

    content {
      sid       = "TableKeyThroughDynamoDB"
      actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "teiji-tick"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}
