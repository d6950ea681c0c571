#!/usr/bin/env bash
# make ecs-wait-stable: returns once the deployed service is stable (one deployment, every
# desired task running), or fails after the AWS CLI's waiter gives up (40 looks, 15 s apart).
# The pipeline's last step: a release is done when the service says so, not when
# CloudFormation's call returns.
#   ECS_STACK_NAME  the stack (default flask-stack)
set -o errexit -o pipefail -o nounset

stack_name=${ECS_STACK_NAME:-flask-stack}

output() {
  aws cloudformation describe-stacks --stack-name "$stack_name" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue | [0]" --output text
}
cluster=$(output ClusterName)
service=$(output ServiceName)
if [[ -z $service || $service == None ]]; then
  echo "ecs-wait-stable: the stack $stack_name has no service yet: deploy it first (make ecs-deploy)" >&2
  exit 1
fi
echo "ecs-wait-stable: waiting for $service in $cluster to be stable"
aws ecs wait services-stable --cluster "$cluster" --services "$service"
echo "ecs-wait-stable: $service is stable"
