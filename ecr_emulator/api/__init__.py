"""The control plane: ECR's awsJson1_1 API, dispatched by X-Amz-Target and driven by the model."""
