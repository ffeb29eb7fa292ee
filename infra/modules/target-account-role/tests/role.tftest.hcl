# The target account's role: trusted by teiji's role with this account's ExternalId only, and
# allowed exactly the ECS, Application Auto Scaling and ELB calls of a tick, in its regions.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "222222222222" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  teiji_role_arn = "arn:aws:iam::111111111111:role/teiji-tick"
  external_id    = "ext-222"
  regions        = ["ap-northeast-1", "us-east-1"]
  clusters       = ["web"]
}

run "trust_and_permissions" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role.target.assume_role_policy).Statement == [{
      Sid       = "TeijiWithItsExternalId"
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { AWS = "arn:aws:iam::111111111111:role/teiji-tick" }
      Condition = { StringEquals = { "sts:ExternalId" = "ext-222" } }
    }]
    error_message = "Only teiji's role, with this account's ExternalId, may assume the role."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.target.policy).Statement : s.Action])) == toset([
      "ecs:DescribeServices", "ecs:UpdateService", "ecs:DescribeTasks", "ecs:DescribeContainerInstances",
      "ecs:ListTasks", "ecs:DescribeTaskDefinition", "application-autoscaling:DescribeScalableTargets",
      "application-autoscaling:RegisterScalableTarget", "elasticloadbalancing:DescribeTargetHealth",
      "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets",
      "ecs:ListServices", "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTargetGroups",
    ])
    error_message = "The role allows exactly the calls a tick makes in a target account."
  }
  # Wake on request needs the wake function's Lambda target group in the load balancer's
  # account and region, so it never works in a target account: its rules are only read there.
  assert {
    condition     = !contains(flatten([for s in jsondecode(aws_iam_role_policy.target.policy).Statement : s.Action]), "elasticloadbalancing:ModifyRule")
    error_message = "No listener rule of a target account may be changed."
  }
  assert {
    condition = toset([for s in jsondecode(aws_iam_role_policy.target.policy).Statement : s.Resource if s.Sid == "Services"][0]) == toset([
      "arn:aws:ecs:ap-northeast-1:222222222222:service/web/*",
      "arn:aws:ecs:us-east-1:222222222222:service/web/*",
    ])
    error_message = "ECS grants: the listed clusters of this account in its regions."
  }
}
