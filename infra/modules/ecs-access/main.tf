# The ECS, Application Auto Scaling and Elastic Load Balancing permissions teiji needs in one
# account: exactly the calls the tick makes there (engine/aws/operations.py), on the narrowest
# resources each API supports, in the allowed regions only. teiji's own execution role and
# modules/target-account-role both use these statements, so the two never drift apart.
# No provider: the statements are plain values, jsonencoded by the caller.

variable "partition" {
  description = "AWS partition of the account (aws, aws-cn, aws-us-gov)."
  type        = string
}

variable "account_id" {
  description = "The account whose services these statements cover."
  type        = string
}

variable "regions" {
  description = "Regions teiji may act in."
  type        = list(string)
}

variable "clusters" {
  description = "ECS cluster names; \"*\" for every cluster in the regions."
  type        = list(string)
}

variable "target_group_arns" {
  description = "Target groups teiji may register and deregister targets in (targets: repair). Null: only target groups in the regions tagged teiji:repair = true."
  type        = list(string)
  default     = null
}

variable "wake_load_balancer_arns" {
  description = "Application Load Balancers with a wake target group (wake on request): teiji may change these load balancers' listener rules only. Empty: no elasticloadbalancing:ModifyRule at all."
  type        = list(string)
  default     = []
}

locals {
  ecs_prefixes = [for region in var.regions : "arn:${var.partition}:ecs:${region}:${var.account_id}"]
  clusters     = contains(var.clusters, "*") ? ["*"] : var.clusters

  cluster_arns  = flatten([for p in local.ecs_prefixes : [for c in local.clusters : "${p}:cluster/${c}"]])
  service_arns  = flatten([for p in local.ecs_prefixes : [for c in local.clusters : "${p}:service/${c}/*"]])
  task_arns     = flatten([for p in local.ecs_prefixes : [for c in local.clusters : "${p}:task/${c}/*"]])
  instance_arns = flatten([for p in local.ecs_prefixes : [for c in local.clusters : "${p}:container-instance/${c}/*"]])

  target_groups_in_regions = [
    for region in var.regions : "arn:${var.partition}:elasticloadbalancing:${region}:${var.account_id}:targetgroup/*"
  ]
  # The rules of a load balancer ...:loadbalancer/app/<name>/<id> are
  # ...:listener-rule/app/<name>/<id>/<listener id>/<rule id>.
  wake_rule_arns = [
    for arn in var.wake_load_balancer_arns : "${replace(arn, ":loadbalancer/app/", ":listener-rule/app/")}/*"
  ]
  always_statements = [
    {
      Sid      = "Services"
      Effect   = "Allow"
      Action   = ["ecs:DescribeServices", "ecs:UpdateService"]
      Resource = local.service_arns
    },
    {
      Sid      = "Tasks"
      Effect   = "Allow"
      Action   = ["ecs:DescribeTasks"]
      Resource = local.task_arns
    },
    {
      Sid      = "ContainerInstances"
      Effect   = "Allow"
      Action   = ["ecs:DescribeContainerInstances"]
      Resource = local.instance_arns
    },
    # ListTasks names the container-instance resource type, but a call without a
    # containerInstance filter (listing a service's tasks) is authorized against "*"; the
    # ecs:cluster condition keeps it to the listed clusters of the allowed regions. Read-only.
    {
      Sid       = "ListTasksInClusters"
      Effect    = "Allow"
      Action    = ["ecs:ListTasks"]
      Resource  = ["*"]
      Condition = { ArnLike = { "ecs:cluster" = local.cluster_arns } }
    },
    # Services opted in by their teiji:profile tag are found by listing the allowed clusters:
    # ListServices authorizes against "*", and ecs:cluster narrows it to those clusters.
    {
      Sid       = "ListServicesInClusters"
      Effect    = "Allow"
      Action    = ["ecs:ListServices"]
      Resource  = ["*"]
      Condition = { ArnLike = { "ecs:cluster" = local.cluster_arns } }
    },
    # DescribeScalableTargets supports no resource-level permission: "*", in the regions.
    {
      Sid       = "DescribeScalableTargets"
      Effect    = "Allow"
      Action    = ["application-autoscaling:DescribeScalableTargets"]
      Resource  = ["*"]
      Condition = { StringEquals = { "aws:RequestedRegion" = var.regions } }
    },
    # A scalable target's ARN ends in a random id, unknown before it exists, so a policy cannot
    # name the targets of given services; the conditions restrict the write to ECS desired
    # counts in the allowed regions.
    {
      Sid      = "RegisterEcsScalableTargets"
      Effect   = "Allow"
      Action   = ["application-autoscaling:RegisterScalableTarget"]
      Resource = ["*"]
      Condition = {
        StringEquals = {
          "aws:RequestedRegion"                        = var.regions
          "application-autoscaling:service-namespace"  = ["ecs"]
          "application-autoscaling:scalable-dimension" = ["ecs:service:DesiredCount"]
        }
      }
    },
    # The task size of a service the tick stops, for the savings figures: task definitions
    # support no resource-level permission for this read (aws/containers-roadmap#929), so "*",
    # in the regions. Read-only; a task definition holds no secret values (secrets are ARNs).
    {
      Sid       = "DescribeTaskDefinitions"
      Effect    = "Allow"
      Action    = ["ecs:DescribeTaskDefinition"]
      Resource  = ["*"]
      Condition = { StringEquals = { "aws:RequestedRegion" = var.regions } }
    },
    # Elastic Load Balancing's Describe* actions support no resource-level permission.
    {
      Sid       = "DescribeTargetHealth"
      Effect    = "Allow"
      Action    = ["elasticloadbalancing:DescribeTargetHealth"]
      Resource  = ["*"]
      Condition = { StringEquals = { "aws:RequestedRegion" = var.regions } }
    },
    # Wake on request: the listener rules in front of a sleeping service are read wherever it
    # runs (the tick reports a load balancer without a wake target group), in these regions.
    {
      Sid       = "DescribeWakeRules"
      Effect    = "Allow"
      Action    = ["elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeTargetGroups"]
      Resource  = ["*"]
      Condition = { StringEquals = { "aws:RequestedRegion" = var.regions } }
    },
  ]

  # While a service sleeps its rules forward to the wake target group of their load balancer
  # (engine.wake_rules), and get their actions back on start. A rule is changed only on a load
  # balancer that has a wake target group, so only those load balancers' rules, and none
  # without one: wake on request off, or a target account (a load balancer's Lambda target
  # group must be in the function's own account and region).
  wake_variants = {
    SwapWakeRules = {
      Sid      = "SwapWakeRules"
      Effect   = "Allow"
      Action   = ["elasticloadbalancing:ModifyRule"]
      Resource = local.wake_rule_arns
    }
  }
  wake_enabled = {
    SwapWakeRules = length(var.wake_load_balancer_arns) > 0
  }

  # Target repair (targets: repair): the listed target groups, or without a list only those in
  # the regions someone tagged teiji:repair = true, never every group in the account.
  repair_variants = {
    listed = {
      Sid      = "RepairTargets"
      Effect   = "Allow"
      Action   = ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"]
      Resource = coalesce(var.target_group_arns, ["-"])
    }
    tagged = {
      Sid       = "RepairTargets"
      Effect    = "Allow"
      Action    = ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"]
      Resource  = local.target_groups_in_regions
      Condition = { StringEquals = { "aws:ResourceTag/teiji:repair" = ["true"] } }
    }
  }
  repair_variant = var.target_group_arns == null ? "tagged" : "listed"

  statements = concat(
    local.always_statements,
    [for name, statement in local.repair_variants : statement if name == local.repair_variant],
    [for name, statement in local.wake_variants : statement if local.wake_enabled[name]],
  )
}

output "statements" {
  description = "IAM policy statements (objects with Sid, Effect, Action, Resource and Condition) to jsonencode into a policy."
  value       = local.statements
}
