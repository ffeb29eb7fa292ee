# The role teiji assumes in one target account. Apply it in that account (a provider with its
# credentials). Trust: teiji's execution role only, and only with this account's ExternalId.
# Permissions: exactly the ECS, Application Auto Scaling and Elastic Load Balancing calls the
# tick makes in a target account (engine/aws/operations.py), in the given regions and clusters;
# nothing on DynamoDB, STS or SSM, which teiji uses in its own account only. No
# elasticloadbalancing:ModifyRule: wake on request works only for load balancers in teiji's own
# account (a Lambda target group must be in its function's account), so the tick only reads the
# listener rules here.

variable "role_name" {
  description = "Name of the role: the role_name of the teiji deployment."
  type        = string
  default     = "teiji-target"

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,64}$", var.role_name))
    error_message = "role_name: an IAM role name (1 to 64 of letters, digits and +=,.@_-), not an ARN."
  }
}

variable "teiji_role_arn" {
  description = "ARN of teiji's execution role (the execution_role_arn output of the teiji module)."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:iam::[0-9]{12}:role/.+$", var.teiji_role_arn))
    error_message = "teiji_role_arn: an IAM role ARN such as arn:aws:iam::111111111111:role/teiji-tick."
  }
}

variable "external_id" {
  description = "The ExternalId teiji must present: the value of its SecureString <external_id_parameter_path>/<this account>."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.external_id) >= 2 && length(var.external_id) <= 1224 && can(regex("^[\\w+=,.@:/-]+$", var.external_id))
    error_message = "external_id: 2 to 1224 of letters, digits and +=,.@:/-."
  }
}

variable "regions" {
  description = "Regions of this account teiji may act in: the teiji deployment's allowed regions that apply here."
  type        = list(string)

  validation {
    condition     = length(var.regions) > 0 && alltrue([for r in var.regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", r))])
    error_message = "regions: at least one AWS region name such as ap-northeast-1."
  }
}

variable "clusters" {
  description = "ECS cluster names in this account teiji may read and change; [\"*\"] for every cluster."
  type        = list(string)
  default     = ["*"]

  validation {
    condition     = length(var.clusters) > 0 && alltrue([for c in var.clusters : can(regex("^([A-Za-z0-9][A-Za-z0-9_-]{0,254}|\\*)$", c))])
    error_message = "clusters: give at least one ECS cluster name (letters, digits, hyphens, underscores) or \"*\"."
  }
}

variable "target_group_arns" {
  description = "Target groups teiji may register and deregister targets in (targets: repair). Null: only target groups in the regions tagged teiji:repair = true."
  type        = list(string)
  default     = null
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

module "ecs_access" {
  source = "../ecs-access"

  partition         = data.aws_partition.current.partition
  account_id        = data.aws_caller_identity.current.account_id
  regions           = var.regions
  clusters          = var.clusters
  target_group_arns = var.target_group_arns
}

resource "aws_iam_role" "target" {
  name = var.role_name
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "TeijiWithItsExternalId"
        Effect    = "Allow"
        Action    = "sts:AssumeRole"
        Principal = { AWS = var.teiji_role_arn }
        Condition = { StringEquals = { "sts:ExternalId" = var.external_id } }
      },
    ]
  })
  max_session_duration = 3600
  tags                 = merge({ "teiji:component" = "target-account-role" }, var.tags)
}

resource "aws_iam_role_policy" "target" {
  name   = "teiji-target"
  role   = aws_iam_role.target.id
  policy = jsonencode({ Version = "2012-10-17", Statement = module.ecs_access.statements })
}

output "role_arn" {
  description = "ARN of the role (its name is the teiji deployment's role_name)."
  value       = aws_iam_role.target.arn
}
