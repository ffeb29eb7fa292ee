# The planned execution policy for the default deployment and for a given allow-list, with a
# mock AWS provider: no credentials, no account, nothing created. `make iac` runs it.

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target = aws_dynamodb_table.config
  values = { arn = "arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-config" }
}

override_resource {
  target = aws_dynamodb_table.state
  values = { arn = "arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-state" }
}

variables {
  lambda_zip_path = "tests/stub-lambda.zip"
}

run "defaults_are_this_account_and_region_only" {
  command = apply

  assert {
    condition     = !contains(keys(local.execution_by_sid), "AssumeRoleInOtherAccounts") && !contains(keys(local.execution_by_sid), "ReadExternalIds")
    error_message = "By default teiji assumes no role and reads no ExternalId."
  }
  assert {
    condition     = local.execution_by_sid["Services"].Resource == ["arn:aws:ecs:ap-northeast-1:111111111111:service/*/*"]
    error_message = "By default the ECS grants cover every cluster of this account and region only."
  }
  assert {
    condition = alltrue([
      for sid in ["DescribeScalableTargets", "RegisterEcsScalableTargets", "DescribeTargetHealth"] :
      local.execution_by_sid[sid].Condition.StringEquals["aws:RequestedRegion"] == ["ap-northeast-1"]
    ])
    error_message = "The grants on \"*\" must be held to this region."
  }
  assert {
    condition     = local.execution_by_sid["RepairTargets"].Resource == ["arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:targetgroup/*"] && local.execution_by_sid["RepairTargets"].Condition.StringEquals["aws:ResourceTag/teiji:repair"] == ["true"]
    error_message = "Without target_group_arns, only target groups tagged teiji:repair = true may be repaired."
  }
  assert {
    condition     = toset(local.execution_by_sid["ReadConfigTable"].Action) == toset(["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"])
    error_message = "The config table must be read-only for the Lambda: ${jsonencode(toset(local.execution_by_sid["ReadConfigTable"].Action))}"
  }
  assert {
    condition = alltrue([
      for s in values(local.execution_by_sid) :
      length(setintersection(toset(s.Action), toset(["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"]))) == 0
      if contains(s.Resource, "arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-config") || contains(s.Resource, "*")
    ])
    error_message = "No statement may let the Lambda write the config table."
  }
  assert {
    condition     = !contains(flatten([for s in values(local.execution_by_sid) : s.Action]), "dynamodb:UpdateItem")
    error_message = "dynamodb:UpdateItem is never called and must not be granted."
  }
  assert {
    condition = (
      aws_lambda_function.tick.environment[0].variables["TEIJI_ALLOWED_ACCOUNTS"] == "111111111111" &&
      aws_lambda_function.tick.environment[0].variables["TEIJI_ALLOWED_REGIONS"] == "ap-northeast-1" &&
      aws_lambda_function.tick.environment[0].variables["TEIJI_MAX_DESIRED"] == "100" &&
      !contains(keys(aws_lambda_function.tick.environment[0].variables), "TEIJI_ALLOWED_CLUSTERS") &&
      !contains(keys(aws_lambda_function.tick.environment[0].variables), "TEIJI_EXTERNAL_ID_PARAMETER")
    )
    error_message = "The default environment: this account and region, every cluster, a cap of 100, no ExternalId path."
  }
  assert {
    condition     = length(aws_ssm_parameter.external_id) == 0
    error_message = "No ExternalId parameter by default."
  }
}

run "an_allow_list_grants_exactly_its_roles_and_regions" {
  command = apply

  variables {
    allowed_accounts = ["222222222222", "333333333333", "111111111111"]
    allowed_regions  = ["us-east-1"]
    clusters         = ["web", "batch"]
    role_name        = "teiji-target"
    organization_id  = "o-a1b2c3d4e5"
    max_desired      = 40
    external_ids     = { "222222222222" = "ext-222", "333333333333" = "ext-333" }
    target_group_arns = [
      "arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/web/0123456789abcdef",
    ]
  }

  assert {
    condition = local.execution_by_sid["AssumeRoleInOtherAccounts"].Resource == [
      "arn:aws:iam::222222222222:role/teiji-target",
      "arn:aws:iam::333333333333:role/teiji-target",
    ]
    error_message = "AssumeRole must list exactly the role in each other allowed account: ${jsonencode(local.execution_by_sid["AssumeRoleInOtherAccounts"].Resource)}"
  }
  assert {
    condition     = local.execution_by_sid["AssumeRoleInOtherAccounts"].Condition.StringEquals["aws:ResourceOrgID"] == ["o-a1b2c3d4e5"]
    error_message = "organization_id must hold AssumeRole to that organization."
  }
  assert {
    condition = local.execution_by_sid["ReadExternalIds"].Resource == [
      "arn:aws:ssm:ap-northeast-1:111111111111:parameter/teiji/external-id/222222222222",
      "arn:aws:ssm:ap-northeast-1:111111111111:parameter/teiji/external-id/333333333333",
    ] && local.execution_by_sid["ReadExternalIds"].Action == ["ssm:GetParameter"]
    error_message = "The role reads exactly one ExternalId parameter per other account."
  }
  assert {
    condition = toset(local.execution_by_sid["Services"].Resource) == toset([
      "arn:aws:ecs:ap-northeast-1:111111111111:service/web/*",
      "arn:aws:ecs:ap-northeast-1:111111111111:service/batch/*",
      "arn:aws:ecs:us-east-1:111111111111:service/web/*",
      "arn:aws:ecs:us-east-1:111111111111:service/batch/*",
    ])
    error_message = "ECS grants: exactly the listed clusters in exactly the allowed regions: ${jsonencode(local.execution_by_sid["Services"].Resource)}"
  }
  assert {
    condition = alltrue([
      for sid in ["DescribeScalableTargets", "RegisterEcsScalableTargets", "DescribeTargetHealth"] :
      local.execution_by_sid[sid].Condition.StringEquals["aws:RequestedRegion"] == ["ap-northeast-1", "us-east-1"]
    ])
    error_message = "The grants on \"*\" must be held to the allowed regions."
  }
  assert {
    condition     = local.execution_by_sid["RepairTargets"].Resource == ["arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/web/0123456789abcdef"] && !contains(keys(local.execution_by_sid["RepairTargets"]), "Condition")
    error_message = "A target group list is granted as given."
  }
  assert {
    condition     = toset(local.execution_by_sid["ReadConfigTable"].Action) == toset(["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"])
    error_message = "The config table stays read-only."
  }
  assert {
    condition = (
      aws_lambda_function.tick.environment[0].variables["TEIJI_ALLOWED_ACCOUNTS"] == "111111111111,222222222222,333333333333" &&
      aws_lambda_function.tick.environment[0].variables["TEIJI_ALLOWED_REGIONS"] == "ap-northeast-1,us-east-1" &&
      aws_lambda_function.tick.environment[0].variables["TEIJI_ALLOWED_CLUSTERS"] == "web,batch" &&
      aws_lambda_function.tick.environment[0].variables["TEIJI_MAX_DESIRED"] == "40" &&
      aws_lambda_function.tick.environment[0].variables["TEIJI_EXTERNAL_ID_PARAMETER"] == "/teiji/external-id"
    )
    error_message = "The environment carries the allow-list, the cap and the ExternalId path."
  }
  assert {
    condition = alltrue([
      for name, value in aws_lambda_function.tick.environment[0].variables : !strcontains(value, "ext-")
    ])
    error_message = "No ExternalId may appear in the function's environment."
  }
  assert {
    condition     = toset(keys(aws_ssm_parameter.external_id)) == toset(["222222222222", "333333333333"]) && alltrue([for p in aws_ssm_parameter.external_id : p.type == "SecureString"])
    error_message = "One SecureString per other account."
  }
}

run "other_accounts_need_a_role_name" {
  command = plan

  variables {
    allowed_accounts = ["222222222222"]
  }

  expect_failures = [aws_iam_role_policy.execution]
}

run "external_ids_only_for_allowed_accounts" {
  command = plan

  variables {
    allowed_accounts = ["222222222222"]
    role_name        = "teiji-target"
    external_ids     = { "444444444444" = "ext-444" }
  }

  expect_failures = [aws_iam_role_policy.execution]
}
