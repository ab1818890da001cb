-- Demo customers and agents, and a few events, recommendations, approvals and optimizations.
-- Fixed ids and ON CONFLICT DO NOTHING: loading twice changes nothing.

INSERT INTO customers (id, name, email, status, metadata) VALUES
    ('c1000000-0000-4000-8000-000000000001', 'Acme Corp', 'platform@acme.example', 'active',
     '{"plan": "enterprise", "gpu_fleet": "H100"}'),
    ('c1000000-0000-4000-8000-000000000002', 'TechStart Inc', 'ops@techstart.example', 'trial',
     '{"plan": "startup", "gpu_fleet": "A100"}')
ON CONFLICT DO NOTHING;

INSERT INTO agents (id, type, name, version, status, endpoint, capabilities, last_heartbeat) VALUES
    ('a1000000-0000-4000-8000-000000000001', 'cost', 'Cost Optimizer', '1.2.0', 'active',
     'http://cost-agent:8001', '{gpu_cost_analysis,storage_optimization,spot_instance_recommendation}',
     now() - interval '30 seconds'),
    ('a1000000-0000-4000-8000-000000000002', 'performance', 'Performance Tuner', '2.1.0', 'active',
     'http://performance-agent:8002', '{kv_cache_tuning,batch_optimization,quantization_testing}',
     now() - interval '20 seconds'),
    ('a1000000-0000-4000-8000-000000000003', 'resource', 'Resource Allocator', '2.0.0', 'active',
     'http://resource-agent:8003', '{auto_scaling,load_balancing}',
     now() - interval '10 seconds'),
    ('a1000000-0000-4000-8000-000000000004', 'application', 'Application Monitor', '1.4.0', 'error',
     'http://application-agent:8004', '{quality_monitoring,regression_detection,hallucination_detection}',
     now() - interval '5 minutes')
ON CONFLICT DO NOTHING;

INSERT INTO events (id, customer_id, agent_id, event_type, severity, title, description, data, occurred_at) VALUES
    ('e1000000-0000-4000-8000-000000000001', 'c1000000-0000-4000-8000-000000000001',
     'a1000000-0000-4000-8000-000000000001', 'cost_anomaly', 'high',
     'GPU spend 40% above 30-day average', 'Idle H100 nodes in us-west-2 since Friday',
     '{"excess_usd_per_day": 1850, "idle_gpus": 4}', now() - interval '3 hours'),
    ('e1000000-0000-4000-8000-000000000002', 'c1000000-0000-4000-8000-000000000001',
     'a1000000-0000-4000-8000-000000000002', 'performance_degradation', 'medium',
     'P95 latency at 800 ms', 'Latency target is 300 ms',
     '{"p95_ms": 800, "target_p95_ms": 300}', now() - interval '20 minutes'),
    ('e1000000-0000-4000-8000-000000000003', 'c1000000-0000-4000-8000-000000000002',
     'a1000000-0000-4000-8000-000000000004', 'quality_regression', 'critical',
     'Quality score 0.78 below threshold 0.85', 'Regression after deploying v1.3.0',
     '{"score": 0.78, "threshold": 0.85, "version": "v1.3.0"}', now() - interval '2 hours 55 minutes')
ON CONFLICT DO NOTHING;

INSERT INTO recommendations (id, customer_id, agent_id, recommendation_type, title, description,
                             estimated_savings_usd, confidence_score, details) VALUES
    ('d1000000-0000-4000-8000-000000000001', 'c1000000-0000-4000-8000-000000000001',
     'a1000000-0000-4000-8000-000000000001', 'cost_reduction',
     'Release 4 idle H100 GPUs', 'Average utilisation 35% over 30 days; 4 GPUs idle.',
     35000.00, 0.92, '{"gpus_to_release": 4, "region": "us-west-2"}'),
    ('d1000000-0000-4000-8000-000000000002', 'c1000000-0000-4000-8000-000000000002',
     'a1000000-0000-4000-8000-000000000003', 'resource_scaling',
     'Scale inference pool from 8 to 12 GPUs', 'Utilisation above 85% for 6 hours.',
     NULL, 0.88, '{"current_gpus": 8, "target_gpus": 12}')
ON CONFLICT DO NOTHING;

INSERT INTO approvals (id, recommendation_id, status, requested_by, decided_by, comment, decided_at) VALUES
    ('d2000000-0000-4000-8000-000000000001', 'd1000000-0000-4000-8000-000000000001', 'approved',
     'Cost Optimizer', 'jane@acme.example', 'Go ahead outside business hours',
     now() - interval '150 minutes'),
    ('d2000000-0000-4000-8000-000000000002', 'd1000000-0000-4000-8000-000000000002', 'pending',
     'Resource Allocator', NULL, NULL, NULL)
ON CONFLICT DO NOTHING;

INSERT INTO optimizations (id, recommendation_id, approval_id, status, started_at, completed_at, result) VALUES
    ('d3000000-0000-4000-8000-000000000001', 'd1000000-0000-4000-8000-000000000001',
     'd2000000-0000-4000-8000-000000000001', 'completed',
     now() - interval '140 minutes', now() - interval '130 minutes',
     '{"gpus_released": 4, "monthly_savings_usd": 35000}')
ON CONFLICT DO NOTHING;
