"""The domain: ECR's rules. No Flask, no HTTP; both planes call only this."""
